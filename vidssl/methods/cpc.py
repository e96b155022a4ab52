"""Video CPC: predict every future segment from a masked context (Lorre et al., WACV 2020).

CPC paper Sec. 3.1, Fig. 1-2. A batch holds T segments of every video as its views
(``data.sampler=sequence``, ``data.views=T``, each segment with its own crop; the
encoder :mod:`vidssl.models.stacked2d` stacks a segment's F frames into channels)::

    clips [B, T, C, F, H, W] -> encoder -> h [B, D, T, h, w]   (last stage map of each segment)
    z_t = p(h_t)                        -> z [B, T, D]         (spatial mean: the representation)
    c = context(h), causal in t         -> c [B, D, T, h', w'] (:mod:`vidssl.models.cpc_context`)
    zhat_{t,t+k} = W_k p(c_t)           -> [B, T, K, D]        (k = 1 .. K, K = T - 1 by default)

and the NCE of :func:`vidssl.losses.cpc_nce.cpc_nce` over all ``B T`` segments of the
global batch (under DDP the ``z`` of every process are gathered with gradient). The
prediction accuracy per step k is logged as ``acc_k1 .. acc_kK`` (Fig. 3).

What evaluation reads is the backbone: its pooled output is ``z``, and the recipes set
``eval.view_pooling: mean`` so that the classifier sees the mean of ``z_t`` over the
test segments, standardised (Sec. 3.2).

Table 3's ablations are options: ``max_step`` (1, 2, 3 or null = all), ``context``
(masked_conv3d, conv2plus1d, convlstm, lstm), ``hard_negatives``; "without random
transformation" is the data option ``data.shared_draw: true`` (one crop for all segments).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from vidssl.data.batch import batch_views, flatten_views
from vidssl.distributed import all_gather_with_grad, rank, world_size
from vidssl.errors import ConfigError
from vidssl.losses.cpc_nce import cpc_nce
from vidssl.methods.base import Method
from vidssl.models.cpc_context import CONTEXT_MODELS, build_context


@dataclass
class CPCConfig:
    segments: int = 10  # T (Sec. 4.2.3); must equal data.views
    context: str = "masked_conv3d"  # Fig. 2; Table 3: conv2plus1d, convlstm, lstm
    context_layers: int = 3
    max_step: Optional[int] = None  # largest k predicted; null = T - 1 (Table 3: 1, 2, 3, all)
    hard_negatives: bool = True  # the other segments of the same video as negatives (Sec. 3.1)

    def __post_init__(self):
        if self.segments < 2:
            raise ConfigError(f"bad value for 'method.segments': {self.segments} (CPC needs >= 2 segments)")
        if self.context not in CONTEXT_MODELS:
            raise ConfigError(f"bad value for 'method.context': {self.context!r} "
                              f"(allowed: {', '.join(CONTEXT_MODELS)})")
        if self.max_step is not None and not 1 <= self.max_step <= self.segments - 1:
            raise ConfigError(f"bad value for 'method.max_step': {self.max_step} "
                              f"(1 .. segments - 1 = {self.segments - 1}, or null for all)")

    @property
    def steps(self) -> int:
        return self.max_step or self.segments - 1


class CPC(Method):
    def __init__(self, cfg: CPCConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        dim = backbone.feat_dim
        self.context = build_context(cfg.context, dim, cfg.context_layers)
        self.predictors = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(cfg.steps))  # W_1 .. W_K

    def encode(self, clips: tuple) -> torch.Tensor:
        """clips: pathways [B, T, ...] -> h [B, D, T, h, w] (last stage map, mean over its own time)."""
        b, t = batch_views(clips)
        if t != self.cfg.segments:
            raise ConfigError(f"CPC was configured for {self.cfg.segments} segments (method.segments) but the "
                              f"batch has {t} views per video (data.views)")
        _, maps = self.backbone(*flatten_views(clips), return_stages=True)
        h = maps[self.backbone.stage_names[-1]].mean(2)  # [B T, D, h, w]
        return h.reshape(b, t, *h.shape[1:]).transpose(1, 2)

    def predict_future(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, D, T, h, w] -> (z [B, T, D], zhat [B, T, K, D])."""
        z = h.mean(dim=(3, 4)).transpose(1, 2)
        pc = self.context(h).mean(dim=(3, 4)).transpose(1, 2)  # p(c_t): [B, T, D]
        return z, torch.stack([w(pc) for w in self.predictors], dim=2)

    def forward(self, batch: dict) -> dict:
        z, pred = self.predict_future(self.encode(batch["clips"]))
        if world_size() > 1:
            candidates, offset = all_gather_with_grad(z.contiguous()), rank() * z.shape[0]
        else:
            candidates, offset = z, 0
        loss, acc = cpc_nce(pred, z, candidates, offset, self.cfg.hard_negatives, return_accuracy=True)
        logs = {f"acc_k{k + 1}": a for k, a in enumerate(acc.detach())}
        logs["acc"] = acc.detach().mean()
        return {"loss": loss, "logs": logs}
