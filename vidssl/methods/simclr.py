"""rho-SimCLR (large-scale study, Sec. 3.2, Fig. 2a, App. B.1 "SimCLR details").

Backbone + 3-layer MLP 2048 -> 128 with BN; every clip is a query whose positives are
the other rho - 1 clips of its video and whose negatives are all clips of the other
videos of the global batch (:func:`vidssl.losses.multi_positive_nt_xent`);
temperature 0.1. Under DDP the embeddings are all-gathered WITH gradient, so the loss
is "computed synchronized over the full batch size" (App. B.1). The paper trains it
with LARS and SyncBN (``optim.name: lars``, ``train.sync_bn: true``, Fig. 5).

Memory: all rho clips are encoded in one forward ("evaluated in parallel across all
clips", Sec. 3.2), so memory grows linearly with rho.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from vidssl.distributed import all_gather_with_grad, rank, world_size
from vidssl.losses.nt_xent import multi_positive_nt_xent
from vidssl.methods.base import Method
from vidssl.methods.rho import split_views
from vidssl.models.heads import MLP


@dataclass
class SimCLRConfig:
    dim: int = 128  # d_SimCLR (App. B.1)
    hidden_dim: int = 2048
    mlp_layers: int = 3  # Table 16
    mlp_bn: bool = True  # Fig. 5: MLP-BN matters for SimCLR
    mlp_last_bn: bool = False
    temperature: float = 0.1


class SimCLR(Method):
    def __init__(self, cfg: SimCLRConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.head = MLP(backbone.feat_dim, cfg.hidden_dim, cfg.dim, cfg.mlp_layers, bn=cfg.mlp_bn,
                        last_bn=cfg.mlp_last_bn)

    def forward(self, batch: dict) -> dict:
        x, b, rho = split_views(batch["clips"], "rho-SimCLR")
        z = self.head(self.backbone(*x)).view(b, rho, -1)  # [b, rho, dim]
        world = world_size()
        if world > 1:
            keys = all_gather_with_grad(z.contiguous())  # [b * world, rho, dim], this process's rows first at rank*b
            index = torch.arange(b, device=z.device) + rank() * b
        else:
            keys, index = z, None
        loss, acc = multi_positive_nt_xent(z, keys, index, self.cfg.temperature, return_accuracy=True)
        return {"loss": loss, "logs": {"acc": acc.detach()}}
