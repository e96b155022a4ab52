"""2D ResNet-18 on a segment of F frames stacked into the channels (video CPC's encoder).

CPC paper Sec. 3.1 and 4.2.3 (after the two-stream network): the F frames of a
segment are stacked into the channels, ``[N, C, F, H, W] -> [N, C * F, H, W]``, and
one 2D ResNet-18 encodes the segment; its conv5 map is the paper's ``h_t`` (7 x 7 x 512
for a 224^2 input) and the pooled output is ``z_t = p(h_t)``. The first convolution
takes ``C * F`` channels (channel ``c * F + f`` is channel c of frame f); every
other layer is :class:`vidssl.models.resnet2d.ResNet2d`'s, BN included.

Frame differences use the project's 3-channel convention (the grayscale difference
repeated): a convolution over the three equal copies is the same function as one
over a single channel with the three kernels summed, so the model class is the
paper's C = 1 one (with three times the first layer's parameters).

Stage maps are ``[N, C_s, 1, H_s, W_s]`` (one time step per segment).
"""
from __future__ import annotations

import torch

from vidssl.errors import BackboneError
from vidssl.models.base import check_int
from vidssl.models.resnet2d import ResNet2d


class StackedResNet2d(ResNet2d):
    """forward(x [N, C, F, H, W]) -> [N, 8w] = z (pooled conv5 of the stacked segment)."""

    def __init__(self, blocks_per_stage: list[int], in_channels: int = 3, width: int = 64, *, frames: int = 10,
                 zero_init_residual: bool = False):
        self.frames = check_int("frames", frames)
        self.clip_channels = check_int("in_channels", in_channels)
        super().__init__(blocks_per_stage, in_channels * frames, width, zero_init_residual=zero_init_residual)

    def frame_features(self, x: torch.Tensor, return_stages: bool = False):
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            raise BackboneError(f"{type(self).__name__} expects segments [N, C, F, H, W], got "
                                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        n, c, f, h, w = x.shape
        if c != self.clip_channels or f != self.frames:
            raise BackboneError(f"{type(self).__name__} was built for segments of {self.frames} frames of "
                                f"{self.clip_channels} channels (option 'frames', data.num_frames) but got C = {c}, "
                                f"F = {f}")
        return super().frame_features(x.reshape(n, c * f, 1, h, w), return_stages)


def stacked2d18(in_channels: int = 3, width: int = 64, *, frames: int = 10,
                zero_init_residual: bool = False) -> StackedResNet2d:
    """ResNet-18 on F stacked frames (CPC encoder); feat_dim = 8 * width."""
    return StackedResNet2d([2, 2, 2, 2], in_channels, width, frames=frames, zero_init_residual=zero_init_residual)
