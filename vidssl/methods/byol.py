"""rho-BYOL (large-scale study, Sec. 3.2, Fig. 2c, Eq. 2, App. B.1 "BYOL details").

Online branch: backbone -> projection MLP (2 layers, 4096 hidden, 256 out, BN) ->
predictor MLP (2 layers, 4096 hidden, BN). Target branch: momentum copies of the
backbone and the projection, m annealed from m0 = 0.996 to 1. Every clip's prediction
is pulled towards the target projections of the other rho - 1 clips of its video with
2 - 2 cos (:func:`vidssl.losses.byol_loss`). No negatives. The paper trains it with
LARS, SyncBN and BN in the MLPs (Fig. 5), lr 4.8, weight decay 1e-6.

Memory (Sec. 3.2 "aggregated sequentially"): as in rho-MoCo, the engine back-propagates
the returned loss once (the DDP-compatible way), so the online branch runs on all
B x rho clips in one forward (activations: rho clips); the target branch runs under
``no_grad`` and keeps none. The value equals the sequential mean of the sub-losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from vidssl.losses.byol_loss import byol_loss
from vidssl.methods.base import Method, Progress
from vidssl.methods.momentum import ema_update_, momentum_at, momentum_copy
from vidssl.methods.rho import split_views
from vidssl.models.heads import MLP


@dataclass
class BYOLConfig:
    dim: int = 256  # d_BYOL (App. B.1)
    hidden_dim: int = 4096
    mlp_layers: int = 2  # projection (Table 16)
    predictor_layers: int = 2  # Table 16: 3 predictor layers hurt
    predictor_hidden_dim: int = 4096
    mlp_bn: bool = True
    momentum: float = 0.996  # m0 of the cosine annealing (App. A.3)


class BYOL(Method):
    def __init__(self, cfg: BYOLConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.projector = MLP(backbone.feat_dim, cfg.hidden_dim, cfg.dim, cfg.mlp_layers, bn=cfg.mlp_bn)
        self.predictor = MLP(cfg.dim, cfg.predictor_hidden_dim, cfg.dim, cfg.predictor_layers, bn=cfg.mlp_bn)
        self.backbone_m = momentum_copy(self.backbone)
        self.projector_m = momentum_copy(self.projector)
        self.momentum = cfg.momentum

    def forward(self, batch: dict) -> dict:
        x, b, rho = split_views(batch["clips"], "rho-BYOL")
        p = self.predictor(self.projector(self.backbone(*x))).view(b, rho, -1)  # predictions [B, rho, dim]
        with torch.no_grad():
            z = self.projector_m(self.backbone_m(*x)).view(b, rho, -1)  # targets [B, rho, dim]
        loss = byol_loss(p, z)
        return {"loss": loss, "logs": {"momentum": self.momentum}}

    @torch.no_grad()
    def after_step(self, progress: Progress) -> None:
        """theta_m <- m theta_m + (1 - m) theta with m = 1 - (1 - m0)(cos(pi k / K) + 1) / 2."""
        self.momentum = momentum_at(progress.fraction, self.cfg.momentum)
        ema_update_(self.backbone_m, self.backbone, self.momentum)
        ema_update_(self.projector_m, self.projector, self.momentum)
