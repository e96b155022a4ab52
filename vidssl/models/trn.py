"""Temporal Relation Network (Zhou et al. 2018) on a shared 2D ResNet-18.

VIE-TRN (family 3 of the VIE paper, Sec. 3 and App. B): K frames, one from each of K
consecutive half-second bins (K = 4 in VIE, 8 in the full TRN), each through the same
2D ResNet-18; the frames' pooled conv5 features f_1..f_K ([N, K, D], D = 8w) are
combined by the multi-scale temporal relation

    T(V) = sum_{d = K..2}  mean_{i_1 < ... < i_d}  g_d([f_{i_1}; ...; f_{i_d}])
    g_d  = Linear(d D, bottleneck) -> ReLU -> Linear(bottleneck, relation_dim)

Zhou et al. sum g_d over 3 randomly drawn ordered d-tuples per scale during training;
here every ordered d-tuple is used and averaged (for K = 4: 1 + 4 + 6 tuples; cheap, as
the relations act on pooled vectors), which keeps the forward deterministic.
``multiscale=False`` keeps only the K-frame relation: VIE's simplified TRN
(conv5 features concatenated over frames, then fully connected layers).

Input: ``[N, C, K, H, W]`` (the K segment frames); output ``[N, relation_dim]``.
Stage maps (``return_stages``) are the 2D net's, ``[N, C_s, K, H_s, W_s]``; unlike the
other backbones the pooled output is the relation output, not the mean of conv5
(read out ``conv5`` to get the frame-averaged 2D features). ``preact=True``: the shared 2D
net is ResNet-18v2 (VIE-TRN, VIE Sec. 4; :mod:`vidssl.models.resnet2d`).
"""
from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.base import STAGE_NAMES, check_bool, check_int
from vidssl.models.resnet2d import ResNet2d


class TRN(nn.Module):
    """forward(x [N, C, K, H, W]) -> [N, relation_dim]."""

    stage_names: list[str] = STAGE_NAMES

    def __init__(self, in_channels: int = 3, width: int = 64, *, segments: int = 4, multiscale: bool = True,
                 relation_dim: int | None = None, bottleneck: int | None = None, zero_init_residual: bool = False,
                 preact: bool = False):
        super().__init__()
        self.segments = check_int("segments", segments, minimum=2 if multiscale else 1)
        check_bool("multiscale", multiscale)
        self.cnn = ResNet2d([2, 2, 2, 2], in_channels, width, zero_init_residual=zero_init_residual, preact=preact)
        self.in_channels = in_channels
        d = self.cnn.feat_dim
        self.feat_dim = check_int("relation_dim", relation_dim if relation_dim is not None else 8 * width)
        bottleneck = check_int("bottleneck", bottleneck if bottleneck is not None else 4 * width)  # 256 at w = 64
        self.scales = list(range(segments, 1, -1)) if multiscale else [segments]
        self.relations = nn.ModuleList()
        for i, scale in enumerate(self.scales):
            # The frame features come out of a ReLU and a mean, so TRN's leading ReLU would be a no-op.
            self.relations.append(nn.Sequential(nn.Linear(scale * d, bottleneck), nn.ReLU(inplace=True),
                                                nn.Linear(bottleneck, self.feat_dim)))
            combos = torch.tensor(list(itertools.combinations(range(segments), scale)), dtype=torch.long)
            self.register_buffer(f"tuples_{i}", combos, persistent=False)  # [n_tuples, scale], frame order kept
        # TRN's fusion layers keep PyTorch's default (Kaiming-uniform) Linear initialisation.

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        if isinstance(x, torch.Tensor) and x.dim() == 5 and x.shape[2] != self.segments:
            raise BackboneError(f"TRN was built for {self.segments} segment frames (option 'segments') but got "
                                f"clips of shape {tuple(x.shape)} (T = {x.shape[2]})")
        frames, maps = self.cnn.frame_features(x, return_stages)  # [N, K, D]
        n, _, d = frames.shape
        out = 0
        for i, g in enumerate(self.relations):
            tuples = getattr(self, f"tuples_{i}")  # [M, scale]
            rel = frames[:, tuples].reshape(n, tuples.shape[0], -1)  # [N, M, scale * D], frames in time order
            out = out + g(rel).mean(dim=1)  # [N, relation_dim]
        return (out, maps) if return_stages else out


def trn(in_channels: int = 3, width: int = 64, *, segments: int = 4, multiscale: bool = True,
        relation_dim: int | None = None, bottleneck: int | None = None, zero_init_residual: bool = False,
        preact: bool = False) -> TRN:
    """Multi-scale TRN on a 2D ResNet-18 (VIE-TRN: 4 segments, ``multiscale=False``, ``preact=True``);
    feat_dim = relation_dim (8 * width)."""
    return TRN(in_channels, width, segments=segments, multiscale=multiscale, relation_dim=relation_dim,
               bottleneck=bottleneck, zero_init_residual=zero_init_residual, preact=preact)
