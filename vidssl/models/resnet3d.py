"""3D ResNets on dense clips: r3d18, r3d34 (3x3x3 convolutions) and R(2+1)D-18.

3D ResNet-18 is the backbone of the dense-trajectory paper (Sec. 4.1, "3D ResNet18
architecture [14]", 16 x 112 x 112 clips) and of VIE-3DResNet (App. B). Layout (the
common r3d_18 of Hara et al. / Tran et al., width w = 64 in the papers):

    stage  kernels                              output for 16 x 112^2 input
    conv1  3x7x7, w, stride (1,2,2)             16 x 56^2
    conv2  max pool 1x3x3 stride (1,2,2)        16 x 28^2   (stem_pool=True)
           [3x3x3, w  ] x2 per block
    conv3  [3x3x3, 2w ] x2, stride 2 (T,H,W)     8 x 14^2
    conv4  [3x3x3, 4w ] x2, stride 2             4 x 7^2
    conv5  [3x3x3, 8w ] x2, stride 2             2 x 4^2
    pool   global average over T, H, W          feat_dim = 8w

Blocks per stage: [2, 2, 2, 2] (18) or [3, 4, 6, 3] (34). The max pool keeps T
(Hara et al. pool in T as well; we keep T so that T halves exactly at conv3-conv5);
``stem_pool=False`` gives torchvision's r3d_18 layout (no pool, maps 2x larger).
Parameters do not depend on the pool: r3d18 at w = 64 has 33,166,272
(torchvision's r3d_18 without its 400-way fc).

R(2+1)D-18 (Tran et al. 2018) factorises every 3x3x3 conv into 1x3x3 -> BN ->
ReLU -> 3x1x1 with M mid channels, M = floor(27 Cin Cout / (9 Cin + 3 Cout)) computed
from the block's input and output channels and used by both convs of the block (as
in the reference VMZ / torchvision code, 31,300,125 parameters at w = 64 without fc).
Its stem is 1x7x7 (45 mid channels at w = 64) then 3x1x1; no pool by default, as in
Tran et al. (conv1 output 16 x 56^2 for 16 x 112^2 input).

``preact=True`` builds the ResNet v2 variant (VIE-3DResNet: ResNet-18v2, VIE Sec. 4):
pre-activation blocks (:class:`~vidssl.models.blocks.PreActBasicBlock`), a stem without its
last BN -> ReLU (the first block normalises it) and BN -> ReLU after the last block. r3d18
then has 33,164,480 parameters at w = 64 (v1 less the stem BN, the projection BNs and the
conv3-conv5 first blocks' BN width difference, plus the final BN: -1,792).
"""
from __future__ import annotations

import torch.nn as nn

from vidssl.models.base import StagedBackbone, check_bool, init_weights
from vidssl.models.blocks import (BasicBlock, Conv2Plus1D, PreActBasicBlock, conv3d, preact_tail,
                                  r2plus1d_mid_channels)

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def _stem_pool() -> nn.MaxPool3d:
    return nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))


class ResNet3d(StagedBackbone):
    """3D ResNet with basic blocks; ``conv="3d"`` (r3d) or ``conv="2plus1d"`` (R(2+1)D).

    forward(x [N, C, T, H, W]) -> [N, 8w]; T halves at conv3, conv4 and conv5,
    H and W halve at conv1, (pool), conv3, conv4, conv5.
    """

    def __init__(self, depth: int, conv: str, in_channels: int = 3, width: int = 64, *,
                 stem_pool: bool = True, zero_init_residual: bool = False, channels_last: bool = True,
                 preact: bool = False):
        super().__init__(in_channels, width, channels_last)
        if depth not in DEPTHS:
            raise ValueError(f"ResNet3d depth must be one of {sorted(DEPTHS)}, got {depth}")
        if conv not in ("3d", "2plus1d"):
            raise ValueError(f"ResNet3d conv must be '3d' or '2plus1d', got {conv!r}")
        check_bool("stem_pool", stem_pool)
        check_bool("zero_init_residual", zero_init_residual)
        self.preact = check_bool("preact", preact)
        self.depth, self.conv = depth, conv
        w = width
        if conv == "3d":
            stem = [nn.Conv3d(in_channels, w, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                    nn.BatchNorm3d(w), nn.ReLU(inplace=True)]
        else:
            mid = max(1, round(45 * w / 64))  # 45 at w = 64 (VMZ / torchvision R2Plus1dStem)
            stem = [nn.Conv3d(in_channels, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
                    nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                    nn.Conv3d(mid, w, (3, 1, 1), padding=(1, 0, 0), bias=False),
                    nn.BatchNorm3d(w), nn.ReLU(inplace=True)]
        if preact:  # v2: the first block's BN -> ReLU normalises the stem's output
            stem = stem[:-2]
        self.stages["conv1"] = nn.Sequential(*stem)
        cin = w
        for i, (blocks, cout, stride) in enumerate(zip(DEPTHS[depth], [w, 2 * w, 4 * w, 8 * w], [1, 2, 2, 2])):
            layers = [_stem_pool()] if i == 0 and stem_pool else []
            for b in range(blocks):
                s = stride if b == 0 else 1
                layers.append(self._block(cin, cout, s))
                cin = cout
            if preact and i == 3:
                layers.append(preact_tail(cout))
            self.stages[f"conv{i + 2}"] = nn.Sequential(*layers)
        self.feat_dim = cin
        init_weights(self, zero_init_residual)

    def _block(self, cin: int, cout: int, stride: int) -> nn.Module:
        block = PreActBasicBlock if self.preact else BasicBlock
        if self.conv == "3d":
            return block(conv3d(cin, cout, 3, stride), conv3d(cout, cout, 3), cin, cout, stride)
        mid = r2plus1d_mid_channels(cin, cout)  # one M per block, used by both convs (VMZ)
        return block(Conv2Plus1D(cin, cout, mid, stride), Conv2Plus1D(cout, cout, mid), cin, cout, stride)


def r3d18(in_channels: int = 3, width: int = 64, *, stem_pool: bool = True, zero_init_residual: bool = False,
          channels_last: bool = True, preact: bool = False):
    """3D ResNet-18 (3x3x3 convs), the dense-trajectory paper's backbone (``preact=True``: VIE-3DResNet's
    ResNet-18v2); feat_dim = 8 * width."""
    return ResNet3d(18, "3d", in_channels, width, stem_pool=stem_pool, zero_init_residual=zero_init_residual,
                    channels_last=channels_last, preact=preact)


def r3d34(in_channels: int = 3, width: int = 64, *, stem_pool: bool = True, zero_init_residual: bool = False,
          channels_last: bool = True, preact: bool = False):
    """3D ResNet-34 (3x3x3 convs; App. C of the dense-trajectory paper); feat_dim = 8 * width."""
    return ResNet3d(34, "3d", in_channels, width, stem_pool=stem_pool, zero_init_residual=zero_init_residual,
                    channels_last=channels_last, preact=preact)


def r2plus1d18(in_channels: int = 3, width: int = 64, *, stem_pool: bool = False,
               zero_init_residual: bool = False, channels_last: bool = False, preact: bool = False):
    """R(2+1)D-18 (Table 5 of the large-scale study); feat_dim = 8 * width.

    channels_last is off by default: the factorised convs gained nothing from it on CPU."""
    return ResNet3d(18, "2plus1d", in_channels, width, stem_pool=stem_pool, zero_init_residual=zero_init_residual,
                    channels_last=channels_last, preact=preact)
