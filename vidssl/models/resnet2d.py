"""2D ResNet-18 applied to every frame on its own, features averaged over time.

VIE-Single (family 1 of the VIE paper, Sec. 3 and App. B) is a plain ResNet-18 on
single frames; App. C applies it to several frames and averages ("Input-Single").
Here a clip ``[N, C, T, H, W]`` is run as ``N * T`` images through the shared 2D
net, and the pooled frame features are averaged over T.

    stage  kernels                          output for a 224^2 frame
    conv1  7x7, w, stride 2                 112^2
    conv2  3x3 max pool stride 2            56^2
           [3x3, w ] x2 per block, x2
    conv3  [3x3, 2w] x2, stride 2           28^2
    conv4  [3x3, 4w] x2, stride 2           14^2
    conv5  [3x3, 8w] x2, stride 2           7^2
    pool   average over H, W, then T        feat_dim = 8w

11,176,512 parameters at w = 64 (torchvision's resnet18 without its fc).
Stage maps are returned as ``[N, C_s, T, H_s, W_s]`` like the 3D backbones.

``preact=True``: ResNet-18v2, the backbone of every VIE family (Sec. 4; He et al. 2016,
"Identity mappings in deep residual networks"): pre-activation blocks (BN -> ReLU -> conv,
projection shortcuts without BN on the pre-activated input), a stem that is the 7x7 conv
alone (the first block normalises it) and BN -> ReLU after the last block (part of conv5).
11,174,720 parameters at w = 64: v1's 11,176,512 less the stem BN (128), the three
projection BNs (1,792) and the first block's BN of each of conv3-conv5 on its input instead
of its output channels (896), plus the final BN (1,024). (TensorFlow's official ResNet v2 code
also projects in the first block of conv2, where the shape does not change: 4,096 more.)
The maps of conv1-conv4 are then the un-normalised residual stream.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from vidssl.models.base import (
    STAGE_NAMES,
    check_bool,
    check_clip,
    check_int,
    init_weights,
)
from vidssl.models.blocks import preact_tail


class BasicBlock2d(nn.Module):
    """out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); x: [B, cin, H, W]."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out.add_(identity))


class PreActBasicBlock2d(nn.Module):
    """v2 block: out = conv2(relu(bn2(conv1(a)))) + (x or proj(a)), a = relu(bn1(x)); x: [B, cin, H, W]
    (the 2D twin of :class:`vidssl.models.blocks.PreActBasicBlock`)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(a)
        out = self.conv2(self.relu(self.bn2(self.conv1(a))))
        return out.add_(identity)


class ResNet2d(nn.Module):
    """Frame-wise 2D ResNet. forward(x [N, C, T, H, W]) -> [N, 8w] (mean over frames)."""

    stage_names: list[str] = STAGE_NAMES

    def __init__(self, blocks_per_stage: list[int], in_channels: int = 3, width: int = 64, *,
                 zero_init_residual: bool = False, preact: bool = False):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.width = check_int("width", width)
        check_bool("zero_init_residual", zero_init_residual)
        self.preact = check_bool("preact", preact)
        w = width
        self.stages = nn.ModuleDict()
        stem = [nn.Conv2d(in_channels, w, 7, stride=2, padding=3, bias=False)]
        self.stages["conv1"] = nn.Sequential(*stem) if preact else nn.Sequential(*stem, nn.BatchNorm2d(w),
                                                                                  nn.ReLU(inplace=True))
        block = PreActBasicBlock2d if preact else BasicBlock2d
        cin = w
        for i, (blocks, cout, stride) in enumerate(zip(blocks_per_stage, [w, 2 * w, 4 * w, 8 * w], [1, 2, 2, 2])):
            layers = [nn.MaxPool2d(3, stride=2, padding=1)] if i == 0 else []
            for b in range(blocks):
                layers.append(block(cin, cout, stride if b == 0 else 1))
                cin = cout
            if preact and i == len(blocks_per_stage) - 1:
                layers.append(preact_tail(cout, dims=2))
            self.stages[f"conv{i + 2}"] = nn.Sequential(*layers)
        self.feat_dim = cin
        init_weights(self, zero_init_residual)

    def frame_features(self, x: torch.Tensor, return_stages: bool = False):
        """x: [N, C, T, H, W] -> per-frame pooled features [N, T, feat_dim] and, if asked,
        the stage maps {stage: [N, C_s, T, H_s, W_s]} (views of the frame-batch maps, no copy)."""
        check_clip(x, self.in_channels, type(self).__name__)
        n, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(n * t, c, h, w)  # frames as a batch of images: [N*T, C, H, W]
        maps = OrderedDict()
        for name, stage in self.stages.items():
            y = stage(y)
            if return_stages:
                maps[name] = y.view(n, t, *y.shape[1:]).transpose(1, 2)
        return y.mean(dim=(2, 3)).view(n, t, -1), maps  # per-frame global average pool

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        """x: [N, C, T, H, W] -> pooled [N, feat_dim] (or (pooled, {stage: [N, C_s, T, H_s, W_s]}))."""
        frames, maps = self.frame_features(x, return_stages)
        pooled = frames.mean(dim=1)  # average over time: [N, feat_dim]
        return (pooled, maps) if return_stages else pooled


def resnet2d18(in_channels: int = 3, width: int = 64, *, zero_init_residual: bool = False,
               preact: bool = False) -> ResNet2d:
    """ResNet-18 on single frames, averaged over time (VIE-Single: ``preact=True``); feat_dim = 8 * width."""
    return ResNet2d([2, 2, 2, 2], in_channels, width, zero_init_residual=zero_init_residual, preact=preact)
