"""The Slow pathway (Feichtenhofer et al., SlowFast) with R-18 or R-50 stages.

Table 17 of the large-scale study (R-50, T x tau input, w = 64 in the paper):

    stage  kernels                                   output for T x 224^2
    conv1  1x7^2, w, stride (1, 2^2)                 T x 112^2
    pool1  1x3^2 max, stride (1, 2^2)                T x 56^2   (start of conv2)
    res2   [1x1^2, w;  1x3^2, w;  1x1^2, 4w ] x3     T x 56^2   -> stage "conv2"
    res3   [1x1^2, 2w; 1x3^2, 2w; 1x1^2, 8w ] x4     T x 28^2   -> "conv3"
    res4   [3x1^2, 4w; 1x3^2, 4w; 1x1^2, 16w] x6     T x 14^2   -> "conv4"
    res5   [3x1^2, 8w; 1x3^2, 8w; 1x1^2, 32w] x3     T x 7^2    -> "conv5"
    pool5  global average pool                       feat_dim = 32w

Temporal filters (kernel 3) only in the first conv of the res4 / res5 blocks, no
temporal stride or pooling anywhere: every stage keeps T. 31,634,496 parameters at
w = 64 (pytorchvideo's slow_r50 is 32.45M with its 400-way head of 819,600).

R-18 (Table 5, VIE-Slow) uses basic blocks [2, 2, 2, 2] whose first conv is
kt x 3^2 (kt = 3 in res4 / res5, 1 before) and second conv 1 x 3^2, as the PySlowFast
basic transform; this gives Table 5's 20.2M parameters with a 400-way head
(20,023,872 without it). feat_dim = 8w.

``preact=True`` (R-18 only; VIE-Slow's ResNet-18v2, VIE Sec. 4): pre-activation basic blocks
(:class:`~vidssl.models.blocks.PreActBasicBlock`, the same kernels), the stem conv without
BN -> ReLU, and BN -> ReLU after res5; 20,022,080 parameters at w = 64.
"""
from __future__ import annotations

import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.base import StagedBackbone, check_bool, init_weights
from vidssl.models.blocks import BasicBlock, Bottleneck, PreActBasicBlock, conv3d, preact_tail

# depth -> (block kind, blocks per stage res2..res5)
DEPTHS = {18: ("basic", [2, 2, 2, 2]), 50: ("bottleneck", [3, 4, 6, 3])}
TEMPORAL_KERNELS = [1, 1, 3, 3]  # res2..res5 (Table 17: non-degenerate temporal filters in res4, res5)


def slow_stem(in_channels: int, width: int, temporal_kernel: int = 1, preact: bool = False) -> nn.Sequential:
    """conv1 of Table 17: 1x7x7, stride (1, 2, 2), BN, ReLU (``preact``: the conv alone, ResNet v2).
    [N, C, T, H, W] -> [N, w, T, H/2, W/2].

    (The SlowFast Fast pathway uses the same stem with a 5x7x7 kernel.)"""
    kt = temporal_kernel
    conv = nn.Conv3d(in_channels, width, (kt, 7, 7), stride=(1, 2, 2), padding=(kt // 2, 3, 3), bias=False)
    if preact:
        return nn.Sequential(conv)
    return nn.Sequential(conv, nn.BatchNorm3d(width), nn.ReLU(inplace=True))


def slow_pool1() -> nn.MaxPool3d:
    """pool1 of Table 17: 1x3x3 max, stride (1, 2, 2)."""
    return nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


def slow_block(kind: str, cin: int, planes: int, temporal_kernel: int, spatial_stride: int,
               preact: bool = False) -> nn.Module:
    """One residual block of the Slow pathway; ``planes`` is the stage's inner width.

    Basic: [kt x 3^2, planes; 1 x 3^2, planes] (out = planes; ``preact``: the v2 block); bottleneck:
    [kt x 1^2, planes; 1 x 3^2, planes; 1 x 1^2, 4 planes] (out = 4 planes).
    The spatial stride sits on the 3x3 conv, never in time.
    """
    if kind == "basic":
        s = (1, spatial_stride, spatial_stride)
        block = PreActBasicBlock if preact else BasicBlock
        return block(conv3d(cin, planes, (temporal_kernel, 3, 3), s), conv3d(planes, planes, (1, 3, 3)),
                     cin, planes, s)
    if preact:
        raise BackboneError("preact (ResNet v2) is built for basic blocks (R-18) only, not the R-50 bottleneck")
    return Bottleneck(cin, planes, 4 * planes, temporal_kernel, spatial_stride)


class Slow(StagedBackbone):
    """Slow pathway ResNet (Table 17). forward(x [N, C, T, H, W]) -> [N, feat_dim]; T is kept
    in every stage, H and W shrink by 4 (conv1 + pool1) then 2 at conv3, conv4, conv5."""

    def __init__(self, depth: int, in_channels: int = 3, width: int = 64, *, zero_init_residual: bool = False,
                 channels_last: bool = True, preact: bool = False):
        super().__init__(in_channels, width, channels_last)
        if depth not in DEPTHS:
            raise ValueError(f"Slow depth must be one of {sorted(DEPTHS)}, got {depth}")
        check_bool("zero_init_residual", zero_init_residual)
        self.preact = check_bool("preact", preact)
        kind, blocks_per_stage = DEPTHS[depth]
        self.depth = depth
        self.stages["conv1"] = slow_stem(in_channels, width, preact=preact)
        cin = width
        for i, (blocks, kt, stride) in enumerate(zip(blocks_per_stage, TEMPORAL_KERNELS, [1, 2, 2, 2])):
            planes = width * 2 ** i
            layers = [slow_pool1()] if i == 0 else []
            for b in range(blocks):
                layers.append(slow_block(kind, cin, planes, kt, stride if b == 0 else 1, preact))
                cin = planes if kind == "basic" else 4 * planes
            if preact and i == 3:
                layers.append(preact_tail(cin))
            self.stages[f"conv{i + 2}"] = nn.Sequential(*layers)
        self.feat_dim = cin
        init_weights(self, zero_init_residual)


def slow_r18(in_channels: int = 3, width: int = 64, *, zero_init_residual: bool = False,
             channels_last: bool = True, preact: bool = False) -> Slow:
    """Slow R-18 (Table 5; VIE-Slow: ``preact=True``); feat_dim = 8 * width."""
    return Slow(18, in_channels, width, zero_init_residual=zero_init_residual, channels_last=channels_last,
                preact=preact)


def slow_r50(in_channels: int = 3, width: int = 64, *, zero_init_residual: bool = False,
             channels_last: bool = True) -> Slow:
    """Slow R-50, the large-scale study's default encoder (Table 17); feat_dim = 32 * width."""
    return Slow(50, in_channels, width, zero_init_residual=zero_init_residual, channels_last=channels_last)
