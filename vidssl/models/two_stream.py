"""Two-stream models of VIE (Sec. 3 family 5, Sec. 4): a single-frame and a multi-frame network side by side.

VIE-TwoStream-S joins VIE-Single (a 2D ResNet-18 on one frame) and VIE-Slow; VIE-TwoStream-SF
joins VIE-Single and VIE-SlowFast; "two-stream models are created by concatenating single- and
multi-frame network outputs" (Sec. 4). Both networks are trained together, as one backbone,
by any method (IR, LA, ...).

Input: the multi-frame network's pathways, ``backbone(clip)`` (Slow, ``[N, C, T, H, W]``) or
``backbone(slow, fast)`` (SlowFast, two-rate batches). The single-frame stream sees the centre
frame ``T // 2`` of the (Slow) clip, so both streams look at the same time span: that frame is
the middle of the span the clip covers (for SlowFast also the Fast pathway's frame
``alpha T // 2``, the same time). In training the clip sits at a random place, so the single
stream sees a random frame of the video, as VIE-Single does.

Output ``[N, D_single + D_multi]``: ``[single(frame); multi(clip)]``. The method's embedding
layer (IR / LA: one linear layer to 128 d, then l2-normalisation) maps that concatenation, i.e.
it sums a linear embedding of each stream before normalising.

Stage maps (``return_stages``): the single map ``[N, C_1, 1, H, W]`` and the multi map averaged
over time concatenated along channels, ``[N, C_1 + C_2, 1, H, W]`` (both streams see the same
crop, so H and W agree). So the read-outs of VIE Sec. 4 (the mean over time first, then a grid)
are the two streams' read-outs side by side, and the pooled output is the mean of the conv5 map,
as for the other backbones.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.base import STAGE_NAMES, check_clip
from vidssl.models.resnet2d import ResNet2d
from vidssl.models.slow import Slow
from vidssl.models.slowfast import SlowFast


def centre_frame(clip: torch.Tensor) -> torch.Tensor:
    """[N, C, T, H, W] -> [N, C, 1, H, W]: frame ``T // 2``, the middle of the clip's span."""
    t = clip.shape[2]
    return clip[:, :, t // 2:t // 2 + 1]


def join_maps(single: torch.Tensor, multi: torch.Tensor, stage: str) -> torch.Tensor:
    """[N, C_1, 1, H, W] and [N, C_2, T, H, W] -> [N, C_1 + C_2, 1, H, W] (multi averaged over time)."""
    if single.shape[3:] != multi.shape[3:]:
        raise BackboneError(f"two-stream {stage}: the streams' maps differ in size ({tuple(single.shape)} and "
                            f"{tuple(multi.shape)}); both must see the same crop")
    return torch.cat([single, multi.mean(dim=2, keepdim=True)], dim=1)


class TwoStream(nn.Module):
    """forward(*pathways of ``multi``) -> [N, feat_dim] = [single(centre frame); multi(*pathways)]."""

    stage_names: list[str] = STAGE_NAMES

    def __init__(self, single: ResNet2d, multi: nn.Module, pathways: int):
        super().__init__()
        self.single, self.multi = single, multi
        self.pathways = pathways
        self.in_channels = single.in_channels
        self.feat_dim = single.feat_dim + multi.feat_dim

    def _check(self, pathways: tuple) -> None:
        if len(pathways) != self.pathways:
            what = "one clip [N, C, T, H, W]" if self.pathways == 1 else \
                "two pathways, backbone(slow, fast) (data.sampler=two_rate)"
            raise BackboneError(f"{type(self).__name__} over {type(self.multi).__name__} takes {what}; "
                                f"got {len(pathways)} input(s)")
        check_clip(pathways[0], self.in_channels, f"{type(self).__name__} (first pathway)")

    def forward(self, *pathways: torch.Tensor, return_stages: bool = False):
        """pathways: the multi-frame network's inputs -> [N, feat_dim] (or (pooled, {stage: map}))."""
        self._check(pathways)
        frame = centre_frame(pathways[0])
        if not return_stages:
            return torch.cat([self.single(frame), self.multi(*pathways)], dim=1)
        p1, m1 = self.single(frame, return_stages=True)
        p2, m2 = self.multi(*pathways, return_stages=True)
        maps = OrderedDict((name, join_maps(m1[name], m2[name], name)) for name in self.stage_names)
        return torch.cat([p1, p2], dim=1), maps


def twostream_s(in_channels: int = 3, width: int = 64, *, preact: bool = True, zero_init_residual: bool = False,
                channels_last: bool = True) -> TwoStream:
    """VIE-TwoStream-S: VIE-Single (2D ResNet-18) + VIE-Slow (Slow R-18); ResNet-18v2 by default, as in
    VIE (Sec. 4); input the Slow clip; feat_dim = 16 * width."""
    single = ResNet2d([2, 2, 2, 2], in_channels, width, zero_init_residual=zero_init_residual, preact=preact)
    multi = Slow(18, in_channels, width, zero_init_residual=zero_init_residual, channels_last=channels_last,
                 preact=preact)
    return TwoStream(single, multi, pathways=1)


def twostream_sf(in_channels: int = 3, width: int = 64, *, preact: bool = True, alpha: int = 4, beta: int = 8,
                 fusion_ratio: int = 2, fusion_kernel: int = 7, zero_init_residual: bool = False,
                 channels_last: bool = True) -> TwoStream:
    """VIE-TwoStream-SF: VIE-Single + VIE-SlowFast (SlowFast R-18); ResNet-18v2 by default; input
    ``(slow, fast)``; feat_dim = 8w + 8w + 8w / beta."""
    single = ResNet2d([2, 2, 2, 2], in_channels, width, zero_init_residual=zero_init_residual, preact=preact)
    multi = SlowFast(18, in_channels, width, alpha=alpha, beta=beta, fusion_ratio=fusion_ratio,
                     fusion_kernel=fusion_kernel, zero_init_residual=zero_init_residual,
                     channels_last=channels_last, preact=preact)
    return TwoStream(single, multi, pathways=2)
