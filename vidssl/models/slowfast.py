"""SlowFast (Feichtenhofer et al. 2019): a Slow and a Fast pathway with lateral connections.

VIE-SlowFast (family 5 of the VIE paper, App. B) uses R-18 with a 4-frame Slow and a
16-frame Fast input; the SlowFast paper's default is R-50, 8x8 / 32x2 (alpha = 4).
Input: two pathways, ``backbone(slow, fast)``, clips ``[N, C, T, H, W]`` and ``[N, C, alpha T, H, W]``
(the two-rate batches of the data pipeline).

    stage  Slow (width w)                      Fast (width w / beta, beta = 8)
    conv1  1x7^2, w                            5x7^2, w/beta           stride (1, 2^2)
    pool1  1x3^2 max, stride (1, 2^2)          same                    -> lateral
    res2   Slow R-50 / R-18 blocks (slow.py),  blocks with temporal    -> lateral
    res3   temporal kernels only in res4/res5  kernel 3 in every stage -> lateral
    res4                                                               -> lateral
    res5
    pool5  global average of each pathway, concatenated: feat_dim = 32w + 32w/beta (R-50)

Lateral connection (time-strided convolution, Sec. 3.4): Fast map ->
conv [7x1^2, 2 C_fast], temporal stride alpha -> BN -> ReLU, concatenated to the Slow
map along channels, so each following Slow stage sees C_slow + 2 C_fast channels
(as in PySlowFast, fusion kernel 7 for 8x8; 5 for 4x16 models).

Stage maps (``return_stages``): the Slow map concatenated with the Fast map averaged
over windows of alpha frames, ``[N, C_slow + C_fast, T, H_s, W_s]``; its mean over
T, H, W is the concatenation of the two pathways' means, so the pooled output is
the mean of the conv5 map, as for every other backbone.

``preact=True`` (R-18 only; VIE-SlowFast's ResNet-18v2, VIE Sec. 4): both pathways get
pre-activation basic blocks, stems without BN -> ReLU and BN -> ReLU after res5; the
laterals stay conv -> BN -> ReLU (they read the un-normalised Fast stream).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import BackboneError
from vidssl.models.base import (
    STAGE_NAMES,
    check_bool,
    check_clip,
    check_int,
    init_weights,
)
from vidssl.models.blocks import preact_tail
from vidssl.models.slow import (
    DEPTHS,
    TEMPORAL_KERNELS,
    slow_block,
    slow_pool1,
    slow_stem,
)

FAST_TEMPORAL_KERNELS = [3, 3, 3, 3]  # res2..res5 of the Fast pathway (its stem is 5x7x7)


class Lateral(nn.Sequential):
    """Fast -> Slow fusion: [N, c, alpha T, H, W] -> [N, ratio c, T, H, W]."""

    def __init__(self, channels: int, ratio: int, kernel: int, alpha: int):
        super().__init__(
            nn.Conv3d(channels, ratio * channels, (kernel, 1, 1), stride=(alpha, 1, 1), padding=(kernel // 2, 0, 0),
                      bias=False),
            nn.BatchNorm3d(ratio * channels),
            nn.ReLU(inplace=True),
        )


class SlowFast(nn.Module):
    """forward([slow [N, C, T, H, W], fast [N, C, alpha T, H, W]]) -> [N, feat_dim]."""

    stage_names: list[str] = STAGE_NAMES

    def __init__(self, depth: int, in_channels: int = 3, width: int = 64, *, alpha: int = 4, beta: int = 8,
                 fusion_ratio: int = 2, fusion_kernel: int = 7, zero_init_residual: bool = False,
                 channels_last: bool = True, preact: bool = False):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"SlowFast depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.in_channels = check_int("in_channels", in_channels)
        self.width = check_int("width", width)
        self.alpha = check_int("alpha", alpha)
        check_int("beta", beta)
        check_int("fusion_ratio", fusion_ratio)
        check_int("fusion_kernel", fusion_kernel)
        check_bool("zero_init_residual", zero_init_residual)
        self.channels_last = check_bool("channels_last", channels_last)
        self.preact = check_bool("preact", preact)
        if width % beta:
            raise BackboneError(f"SlowFast width ({width}) must be a multiple of beta ({beta}): "
                                f"the Fast pathway has width / beta channels")
        kind, blocks_per_stage = DEPTHS[depth]
        expansion = 1 if kind == "basic" else 4
        fw = width // beta
        self.slow, self.fast, self.lateral = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        self.pool1 = slow_pool1()  # parameter-free, shared by both pathways
        self.slow["conv1"] = slow_stem(in_channels, width, 1, preact)
        self.fast["conv1"] = slow_stem(in_channels, fw, 5, preact)
        slow_in, fast_in = width, fw
        self.lateral["conv1"] = Lateral(fast_in, fusion_ratio, fusion_kernel, alpha)
        for i, blocks in enumerate(blocks_per_stage):
            name = f"conv{i + 2}"
            stride = 1 if i == 0 else 2
            slow_layers, fast_layers = [], []
            cin = slow_in + fusion_ratio * fast_in  # the fused Slow input
            for b in range(blocks):
                slow_layers.append(slow_block(kind, cin, width * 2 ** i, TEMPORAL_KERNELS[i], stride if b == 0 else 1,
                                              preact))
                cin = expansion * width * 2 ** i
            cin_f = fast_in
            for b in range(blocks):
                fast_layers.append(slow_block(kind, cin_f, fw * 2 ** i, FAST_TEMPORAL_KERNELS[i],
                                              stride if b == 0 else 1, preact))
                cin_f = expansion * fw * 2 ** i
            if preact and i == 3:  # v2: BN -> ReLU after the last block of each pathway
                slow_layers.append(preact_tail(cin))
                fast_layers.append(preact_tail(cin_f))
            slow_in, fast_in = cin, cin_f
            self.slow[name], self.fast[name] = nn.Sequential(*slow_layers), nn.Sequential(*fast_layers)
            if i < 3:  # laterals after conv1, conv2, conv3, conv4; none after conv5
                self.lateral[name] = Lateral(fast_in, fusion_ratio, fusion_kernel, alpha)
        self.depth = depth
        self.feat_dim = slow_in + fast_in
        init_weights(self, zero_init_residual)

    def _check(self, slow, fast) -> None:
        if fast is None:
            raise BackboneError("SlowFast takes two pathways, backbone(slow, fast), each [N, C, T, H, W] "
                                "(data.sampler=two_rate)")
        check_clip(slow, self.in_channels, "SlowFast (slow pathway)")
        check_clip(fast, self.in_channels, "SlowFast (fast pathway)")
        if (slow.shape[0], *slow.shape[3:]) != (fast.shape[0], *fast.shape[3:]) or \
                fast.shape[2] != self.alpha * slow.shape[2]:
            raise BackboneError(f"SlowFast needs fast = [N, C, {self.alpha} T, H, W] for slow = [N, C, T, H, W] "
                                f"(alpha = {self.alpha}); got slow {tuple(slow.shape)} and fast {tuple(fast.shape)}")

    def _stage_map(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        """[N, Cs, T, H, W] + [N, Cf, alpha T, H, W] -> [N, Cs + Cf, T, H, W] (fast averaged per alpha frames)."""
        fast = F.avg_pool3d(fast, (self.alpha, 1, 1), (self.alpha, 1, 1))
        return torch.cat([slow, fast], dim=1)

    def forward(self, slow: torch.Tensor, fast: torch.Tensor | None = None, return_stages: bool = False):
        """slow [N, C, T, H, W], fast [N, C, alpha T, H, W] -> pooled [N, feat_dim] (or (pooled, maps))."""
        self._check(slow, fast)
        if self.channels_last and slow.device.type == "cpu":  # faster oneDNN 3D convs (see base.py)
            slow = slow.contiguous(memory_format=torch.channels_last_3d)
            fast = fast.contiguous(memory_format=torch.channels_last_3d)
        maps = OrderedDict()
        for i, name in enumerate(self.stage_names):
            slow, fast = self.slow[name](slow), self.fast[name](fast)
            if return_stages:
                maps[name] = self._stage_map(slow, fast)
            if i == 0:  # pool1 of both pathways comes before the first lateral (PySlowFast's stem)
                slow, fast = self.pool1(slow), self.pool1(fast)
            if name in self.lateral:
                slow = torch.cat([slow, self.lateral[name](fast)], dim=1)
        pooled = torch.cat([slow.mean(dim=(2, 3, 4)), fast.mean(dim=(2, 3, 4))], dim=1)  # [N, feat_dim]
        return (pooled, maps) if return_stages else pooled


def slowfast_r50(in_channels: int = 3, width: int = 64, *, alpha: int = 4, beta: int = 8, fusion_ratio: int = 2,
                 fusion_kernel: int = 7, zero_init_residual: bool = False, channels_last: bool = True) -> SlowFast:
    """SlowFast R-50 (8x8: Slow 8 frames, Fast 32 frames); feat_dim = 32w + 32w/beta (2304 at w = 64)."""
    return SlowFast(50, in_channels, width, alpha=alpha, beta=beta, fusion_ratio=fusion_ratio,
                    fusion_kernel=fusion_kernel, zero_init_residual=zero_init_residual, channels_last=channels_last)


def slowfast_r18(in_channels: int = 3, width: int = 64, *, alpha: int = 4, beta: int = 8, fusion_ratio: int = 2,
                 fusion_kernel: int = 7, zero_init_residual: bool = False, channels_last: bool = True,
                 preact: bool = False) -> SlowFast:
    """SlowFast R-18 (VIE-SlowFast: Slow 4 frames, Fast 16 frames, ``preact=True``); feat_dim = 8w + 8w/beta
    (576 at w = 64)."""
    return SlowFast(18, in_channels, width, alpha=alpha, beta=beta, fusion_ratio=fusion_ratio,
                    fusion_kernel=fusion_kernel, zero_init_residual=zero_init_residual, channels_last=channels_last,
                    preact=preact)
