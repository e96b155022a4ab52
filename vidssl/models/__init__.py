"""Backbones (video encoders) and heads.

``build_backbone(name, in_channels=3, width=64, **options)`` returns an ``nn.Module``
with ``feat_dim``, ``stage_names`` (conv1..conv5) and
``forward(x [N, C, T, H, W], return_stages=False)`` -> pooled ``[N, feat_dim]`` or
``(pooled, {stage: feature map [N, C_s, T_s, H_s, W_s]})``.

``width`` scales every channel count (64 = the papers, 16 = tiny CPU models);
``in_channels`` is 3 for RGB and frame differences, 2 for optical flow.
SlowFast takes a list ``[slow, fast]`` of clips instead of one tensor.
The ResNet-18 families take ``preact=True`` for ResNet-18v2 (VIE Sec. 4); the two-stream
models (``twostream_s``, ``twostream_sf``) are VIE's, v2 by default.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.base import check_int
from vidssl.models.dilation import DILATABLE, dilate_conv5
from vidssl.models.heads import MLP
from vidssl.models.resnet2d import resnet2d18
from vidssl.models.resnet3d import r2plus1d18, r3d18, r3d34
from vidssl.models.s3dg import s3dg
from vidssl.models.slow import slow_r18, slow_r50
from vidssl.models.slowfast import slowfast_r18, slowfast_r50
from vidssl.models.stacked2d import stacked2d18
from vidssl.models.trn import trn
from vidssl.models.two_stream import twostream_s, twostream_sf

# name -> factory(in_channels, width, **options); the options are the factory's keyword-only arguments
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "r3d18": r3d18,
    "r3d34": r3d34,
    "r2plus1d18": r2plus1d18,
    "slow_r18": slow_r18,
    "slow_r50": slow_r50,
    "resnet2d18": resnet2d18,
    "slowfast_r18": slowfast_r18,  # input: two pathways, backbone(slow, fast) (data.sampler=two_rate)
    "slowfast_r50": slowfast_r50,
    "trn": trn,  # input: the K segment frames; pooled output = temporal relation features
    "stacked2d18": stacked2d18,  # video CPC's encoder: F frames stacked into the channels (option frames)
    "s3dg": s3dg,  # separable-conv Inception-v1 with feature gating (large-scale study, Table 5)
    "twostream_s": twostream_s,  # VIE-TwoStream-S: 2D ResNet-18 on the clip's centre frame + Slow R-18
    "twostream_sf": twostream_sf,  # VIE-TwoStream-SF: + SlowFast R-18; input: two pathways (slow, fast)
}


def backbone_options(name: str) -> dict[str, object]:
    """The options a backbone accepts, with their defaults (its factory's keyword-only arguments)."""
    _check_name(name)
    params = inspect.signature(BACKBONES[name]).parameters.values()
    options = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if name in DILATABLE:  # conv5 at spatial stride 1, dilation 2 (App. B.3; models/dilation.py)
        options["conv5_dilation"] = 1
    return options


def build_backbone(name: str, in_channels: int = 3, width: int = 64, **options) -> nn.Module:
    """Build backbone ``name`` (one of :data:`BACKBONES`).

    Raises :class:`BackboneError` (a ``ValueError``) for an unknown name or option,
    naming the allowed ones, and for a bad ``in_channels`` / ``width`` / option value.
    """
    allowed = backbone_options(name)
    unknown = sorted(set(options) - set(allowed))
    if "conv5_dilation" in unknown:
        raise BackboneError(f"backbone {name!r} has no conv5_dilation option (conv5 at stride 1 with dilated "
                            f"filters is built for {', '.join(DILATABLE)})")
    if unknown:
        listing = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
        raise BackboneError(f"unknown option(s) {', '.join(map(repr, unknown))} for backbone {name!r} "
                            f"(allowed: {listing})")
    check_int("in_channels", in_channels)
    check_int("width", width)
    dilation = options.pop("conv5_dilation", 1)
    return dilate_conv5(BACKBONES[name](in_channels=in_channels, width=width, **options), dilation)


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone {name!r} (allowed: {', '.join(BACKBONES)})")


__all__ = ["BACKBONES", "MLP", "BackboneError", "backbone_options", "build_backbone"]
