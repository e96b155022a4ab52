"""What the four rho-methods share: the clips of a batch as rho views per video.

Large-scale study, Sec. 3.1: a batch of B videos gives rho B clips, ``clips:
[B, rho, C, T, H, W]`` (or, for two-pathway backbones, a list of such tensors, one
per pathway). The encoders see them flattened video-major, ``[B * rho, C, T, H, W]``,
so that embeddings reshape back to ``[B, rho, D]``.

rho >= 2 clips come from different times of the video (the sampler's ``t_max``
bounds how far apart); the paper's rho = 1 row ("two spatial crops at the same
temporal instance", Table 2) is ``data.views=2 data.t_max=0``: two independently
augmented crops of the same clip.
"""
from __future__ import annotations

from typing import Union

import torch

from vidssl.errors import RhoInputError

Clips = Union[torch.Tensor, list]


def split_views(clips: Clips, method: str) -> tuple[Clips, int, int]:
    """``clips [B, rho, C, T, H, W]`` (or a list of them) -> (``[B * rho, C, T, H, W]`` (or a
    list), B, rho); raises :class:`RhoInputError` unless rho >= 2."""
    pathways = clips if isinstance(clips, (list, tuple)) else [clips]
    if not pathways or any(not isinstance(x, torch.Tensor) or x.dim() != 6 for x in pathways):
        shapes = [tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__ for x in pathways]
        raise RhoInputError(f"{method} expects clips [B, rho, C, T, H, W], got {shapes}")
    b, rho = pathways[0].shape[:2]
    if any(x.shape[:2] != (b, rho) for x in pathways):
        raise RhoInputError(f"{method}: the pathways disagree on [B, rho]: {[tuple(x.shape[:2]) for x in pathways]}")
    if rho < 2:
        raise RhoInputError(
            f"{method} needs rho >= 2 clips per video (data.views >= 2), got {rho}; for the paper's "
            "rho = 1 setting (two crops of the same clip) use data.views=2 data.t_max=0"
        )
    flat = [x.flatten(0, 1) for x in pathways]
    return (flat if isinstance(clips, (list, tuple)) else flat[0]), b, rho


def num_clips(x: Clips) -> int:
    return (x[0] if isinstance(x, (list, tuple)) else x).shape[0]


def select_clips(x: Clips, index: torch.Tensor) -> Clips:
    """Rows ``index`` of flattened clips (every pathway)."""
    if isinstance(x, (list, tuple)):
        return [p[index] for p in x]
    return x[index]
