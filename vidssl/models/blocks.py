"""Residual blocks shared by the 3D backbones (r3d, R(2+1)D, Slow, SlowFast).

All maps are ``[N, C, T, H, W]``. Strides are ``(temporal, spatial, spatial)``.
``BasicBlock`` / ``Bottleneck`` are the original (v1, post-activation) blocks;
``PreActBasicBlock`` is ResNet v2's (He et al. 2016, "Identity mappings in deep residual
networks"), the ResNet-18v2 of VIE (Sec. 4): see :func:`preact_tail` for the rest of a v2 net.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def triple(v) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


def conv3d(cin: int, cout: int, kernel, stride=1) -> nn.Conv3d:
    """A bias-free 3D convolution with 'same' padding (odd kernels)."""
    kernel, stride = triple(kernel), triple(stride)
    return nn.Conv3d(cin, cout, kernel, stride=stride, padding=tuple(k // 2 for k in kernel), bias=False)


def r2plus1d_mid_channels(cin: int, cout: int, t: int = 3, d: int = 3) -> int:
    """Mid channels M of a factorised (2+1)D conv, chosen so that its parameter count
    matches the full t x d x d conv: M = floor(t d^2 Cin Cout / (d^2 Cin + t Cout))
    (Tran et al., "A closer look at spatiotemporal convolutions", Sec. 3.5)."""
    return max(1, (t * d * d * cin * cout) // (d * d * cin + t * cout))


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 conv factorised into a 1x3x3 spatial conv, BN, ReLU and a 3x1x1 temporal conv.

    x: [N, cin, T, H, W] -> [N, cout, T / s, H / s, W / s].
    """

    def __init__(self, cin: int, cout: int, mid: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(cin, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, cout, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


def shortcut(cin: int, cout: int, stride) -> nn.Module | None:
    """Projection shortcut (1x1x1 conv + BN) where the shape changes, else identity (None)."""
    stride = triple(stride)
    if cin == cout and stride == (1, 1, 1):
        return None
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))


class BasicBlock(nn.Module):
    """ResNet basic block: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    ``conv1`` carries the block's stride; the caller picks the convolutions (3x3x3 for
    r3d, (2+1)D for R(2+1)D, (kt)x3x3 then 1x3x3 for Slow R-18).
    x: [N, cin, T, H, W] -> [N, cout, T / st, H / s, W / s].
    """

    def __init__(self, conv1: nn.Module, conv2: nn.Module, cin: int, cout: int, stride):
        super().__init__()
        self.conv1 = conv1
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = conv2
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, cout, stride)

    @property
    def last_bn(self) -> nn.BatchNorm3d:  # zeroed by zero_init_residual (a property: no duplicate state key)
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out.add_(identity))  # in place: saves one map-sized allocation per block


class Bottleneck(nn.Module):
    """ResNet bottleneck as in the Slow pathway (Table 17 of the large-scale study):
    [kt x 1^2, inner] -> [1 x 3^2, inner] (spatial stride here) -> [1 x 1^2, cout].

    kt is 1 in res2/res3 and 3 in res4/res5 (the underlined temporal filters).
    x: [N, cin, T, H, W] -> [N, cout, T, H / s, W / s] (no temporal stride).
    """

    def __init__(self, cin: int, inner: int, cout: int, temporal_kernel: int, spatial_stride: int):
        super().__init__()
        self.conv1 = conv3d(cin, inner, (temporal_kernel, 1, 1))
        self.bn1 = nn.BatchNorm3d(inner)
        self.conv2 = conv3d(inner, inner, (1, 3, 3), stride=(1, spatial_stride, spatial_stride))
        self.bn2 = nn.BatchNorm3d(inner)
        self.conv3 = conv3d(inner, cout, 1)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut(cin, cout, (1, spatial_stride, spatial_stride))

    @property
    def last_bn(self) -> nn.BatchNorm3d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out.add_(identity))


class PreActBasicBlock(nn.Module):
    """Pre-activation (v2) basic block: BN -> ReLU -> conv1 -> BN -> ReLU -> conv2, plus the shortcut.

    out = conv2(relu(bn2(conv1(a)))) + s, with a = relu(bn1(x)) and s = x, or a projection
    ``proj(a)`` (1x1x1 conv with the block's stride, no BN) where the shape changes (He et al.
    2016, Fig. 4e; the projection sees the pre-activated input, as in their code). Nothing is
    applied after the addition: the residual stream stays un-normalised until the net's
    :func:`preact_tail`. ``bn1`` has ``cin`` channels (v1's first BN has ``cout``).
    x: [N, cin, T, H, W] -> [N, cout, T / st, H / s, W / s].
    """

    def __init__(self, conv1: nn.Module, conv2: nn.Module, cin: int, cout: int, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm3d(cin)
        self.conv1 = conv1
        self.bn2 = nn.BatchNorm3d(cout)
        self.conv2 = conv2
        self.relu = nn.ReLU(inplace=True)
        stride = triple(stride)
        self.downsample = None
        if cin != cout or stride != (1, 1, 1):
            self.downsample = nn.Conv3d(cin, cout, 1, stride=stride, bias=False)

    @property
    def last_bn(self) -> nn.BatchNorm3d:  # zero_init_residual: bn2 = 0 makes conv2 see zeros, the block the identity
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(a)
        out = self.conv2(self.relu(self.bn2(self.conv1(a))))
        return out.add_(identity)


def preact_tail(channels: int, dims: int = 3) -> nn.Sequential:
    """BN -> ReLU after the last block of a v2 net (its blocks leave the sum un-normalised);
    part of the conv5 stage, so that the pooled output is the mean of the conv5 map."""
    bn = nn.BatchNorm3d(channels) if dims == 3 else nn.BatchNorm2d(channels)
    return nn.Sequential(bn, nn.ReLU(inplace=True))
