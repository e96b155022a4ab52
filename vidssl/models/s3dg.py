"""S3D-G (Xie et al., "Rethinking spatiotemporal feature learning", ECCV 2018): Inception-v1
with every 3x3x3 convolution made separable (1x3x3 then 3x1x1) and feature gating; a
common backbone of unsupervised video learning (large-scale study, Table 5: 9.1M
parameters with its Kinetics-400 classifier).

Layout (width w = 64 is the paper's; every channel count scales by w / 64), for a
32 x 224^2 clip:

    stage  blocks                                                    output
    conv1  SepConv 7x7x7 (1x7x7 stride (1,2,2), 7x1x1 stride (2,1,1)), 64   16 x 112^2
    conv2  max pool 1x3x3 /(1,2,2), Conv 1x1x1 64, SepConv 3x3x3 192 +
           gating, max pool 1x3x3 /(1,2,2)                                   16 x 28^2
    conv3  Mixed_3b (256), Mixed_3c (480)                                    16 x 28^2
    conv4  max pool 3x3x3 /2, Mixed_4b .. 4f (512, 512, 512, 528, 832)        8 x 14^2
    conv5  max pool 2x2x2 /2, Mixed_5b (832), Mixed_5c (1024)                 4 x 7^2
    pool   global average over T, H, W                  feat_dim = 1024 (16 w)

A Mixed block has four branches (1x1x1; 1x1x1 -> SepConv 3x3x3; 1x1x1 -> SepConv 3x3x3;
max pool 3x3x3 -> 1x1x1), concatenated; each branch's output is gated,
``y = x * sigmoid(W mean_{T,H,W}(x) + b)`` (Sec. 4.2, "feature gating"). Convolutions have
no bias; each is followed by BN and ReLU.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from vidssl.models.base import StagedBackbone, init_weights

# (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj) of the Inception-v1 blocks at w = 64
MIXED = {
    "3b": (64, 96, 128, 16, 32, 32), "3c": (128, 128, 192, 32, 96, 64),
    "4b": (192, 96, 208, 16, 48, 64), "4c": (160, 112, 224, 24, 64, 64), "4d": (128, 128, 256, 24, 64, 64),
    "4e": (112, 144, 288, 32, 64, 64), "4f": (256, 160, 320, 32, 128, 128),
    "5b": (256, 160, 320, 32, 128, 128), "5c": (384, 192, 384, 48, 128, 128),
}


def _unit(cin: int, cout: int, kernel, stride=1, padding=0) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class SepConv3d(nn.Sequential):
    """k x k x k as 1 x k x k (cin -> cout) then k x 1 x 1 (cout -> cout), BN + ReLU after each."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        p = k // 2
        super().__init__(_unit(cin, cout, (1, k, k), (1, stride, stride), (0, p, p)),
                         _unit(cout, cout, (k, 1, 1), (stride, 1, 1), (p, 0, 0)))


class SelfGating(nn.Module):
    """x [N, C, T, H, W] -> x * sigmoid(W mean(x) + b), one weight per channel pair (S3D-G)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # [N, C]
        return x * gate[:, :, None, None, None]


class Mixed(nn.Module):
    """Inception block with separable 3x3x3 branches and gating on every branch."""

    def __init__(self, cin: int, b0: int, b1r: int, b1: int, b2r: int, b2: int, b3: int):
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(_unit(cin, b0, 1), SelfGating(b0)),
            nn.Sequential(_unit(cin, b1r, 1), SepConv3d(b1r, b1, 3), SelfGating(b1)),
            nn.Sequential(_unit(cin, b2r, 1), SepConv3d(b2r, b2, 3), SelfGating(b2)),
            nn.Sequential(nn.MaxPool3d(3, 1, 1), _unit(cin, b3, 1), SelfGating(b3)),
        ])
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class S3DG(StagedBackbone):
    """S3D-G; forward(x [N, C, T, H, W]) -> [N, 16 w]. T halves at conv1, conv4, conv5."""

    def __init__(self, in_channels: int = 3, width: int = 64, *, channels_last: bool = False):
        super().__init__(in_channels, width, channels_last)

        def c(n: int) -> int:
            return max(1, round(n * width / 64))

        self.stages["conv1"] = SepConv3d(in_channels, c(64), 7, stride=2)
        self.stages["conv2"] = nn.Sequential(
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), _unit(c(64), c(64), 1), SepConv3d(c(64), c(192), 3),
            SelfGating(c(192)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        cin = c(192)
        groups = {"conv3": ["3b", "3c"], "conv4": ["4b", "4c", "4d", "4e", "4f"], "conv5": ["5b", "5c"]}
        pools = {"conv3": None, "conv4": nn.MaxPool3d(3, 2, 1), "conv5": nn.MaxPool3d(2, 2, 0)}
        for stage, names in groups.items():
            layers = [pools[stage]] if pools[stage] is not None else []
            for n in names:
                block = Mixed(cin, *(c(v) for v in MIXED[n]))
                layers.append(block)
                cin = block.out_channels
            self.stages[stage] = nn.Sequential(*layers)
        self.feat_dim = cin
        init_weights(self)


def s3dg(in_channels: int = 3, width: int = 64, *, channels_last: bool = False) -> S3DG:
    """S3D-G (large-scale study Table 5); feat_dim = 1024 at w = 64."""
    return S3DG(in_channels, width, channels_last=channels_last)
