"""rho-SwAV (large-scale study, Sec. 3.2, Fig. 2d, Eq. 3, App. B.1 "SwAV details").

Backbone -> 3-layer MLP 2048 -> 128 with BN -> l2-normalised embedding z, scored
against K learned prototypes (default 1000, re-normalised to unit length before every
forward, as SwAV). For every clip index the Sinkhorn-Knopp codes (eps 0.05, 3
iterations) are computed without gradient over the whole global batch
(:mod:`vidssl.methods.sinkhorn`); every clip then predicts the codes of the other
rho - 1 clips of its video (swapped prediction, :func:`vidssl.losses.swav_loss`),
temperature 0.1. The prototypes are frozen during the first ``freeze_prototypes_epochs``
epoch(s) (App. B.1): their gradient is exactly zero (the scores use a detached copy;
a zero-valued term keeps them in the graph so DDP sees a gradient for every parameter).

Memory: all rho clips in one forward (Sec. 3.2: SwAV's loss is evaluated in parallel).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.losses.swav_loss import swav_loss
from vidssl.methods.base import Method
from vidssl.methods.rho import split_views
from vidssl.methods.sinkhorn import sinkhorn
from vidssl.models.heads import MLP


@dataclass
class SwAVConfig:
    dim: int = 128
    hidden_dim: int = 2048
    mlp_layers: int = 3  # Table 16 (3 instead of SwAV's 2)
    mlp_bn: bool = True
    num_prototypes: int = 1000
    temperature: float = 0.1
    epsilon: float = 0.05  # Sinkhorn regularisation
    sinkhorn_iterations: int = 3
    freeze_prototypes_epochs: int = 1


class SwAV(Method):
    def __init__(self, cfg: SwAVConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        if cfg.num_prototypes < 2:
            raise ValueError(f"bad value for 'method.num_prototypes': {cfg.num_prototypes} (must be >= 2)")
        self.cfg = cfg
        self.backbone = backbone
        self.head = MLP(backbone.feat_dim, cfg.hidden_dim, cfg.dim, cfg.mlp_layers, bn=cfg.mlp_bn)
        self.prototypes = nn.Linear(cfg.dim, cfg.num_prototypes, bias=False)  # weight [K, dim]
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    @property
    def prototypes_frozen(self) -> bool:
        return self.progress.epoch < self.cfg.freeze_prototypes_epochs

    def forward(self, batch: dict) -> dict:
        x, b, rho = split_views(batch["clips"], "rho-SwAV")
        with torch.no_grad():  # unit prototypes, so that scores are cosine similarities
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        z = F.normalize(self.head(self.backbone(*x)), dim=1)  # [B*rho, dim]
        c = self.prototypes.weight  # [K, dim]
        if self.prototypes_frozen and self.training:
            c = c.detach() + 0.0 * c  # zero gradient for the prototypes, but still in the graph (DDP)
        scores = (z @ c.t()).view(b, rho, -1)  # [B, rho, K]
        with torch.no_grad():
            codes = torch.stack(
                [sinkhorn(scores[:, i].detach(), self.cfg.epsilon, self.cfg.sinkhorn_iterations) for i in range(rho)],
                dim=1,
            )  # [B, rho, K], each clip index normalised over the global batch
        loss = swav_loss(scores, codes, self.cfg.temperature)
        return {"loss": loss, "logs": {"prototypes_frozen": float(self.prototypes_frozen)}}
