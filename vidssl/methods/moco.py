"""rho-MoCo (large-scale study, Sec. 3.2, Fig. 2b, App. B.1 "MoCo details").

Every clip of a video is a query of the online encoder (backbone + 3-layer MLP
2048 -> 128, no BN); its positives are the momentum-encoder keys of the other
rho - 1 clips of the same video, its negatives a queue of 65536 keys of earlier
batches that receives all rho keys of every video (Eq. 1 with several positives,
:func:`vidssl.losses.multi_positive_info_nce`); temperature 0.1. The momentum
encoder averages the parameters with m annealed from m0 = 0.994 to 1 (Table 15).

Shuffle-BN (MoCo, App. B.1): the keys must not share BN statistics with their
queries. Under DDP the key clips of the global batch are shuffled across processes
before the momentum encoder and unshuffled after, as in MoCo. In one process the
equivalent is to shuffle the key clips and run the momentum encoder on ``bn_splits``
separate groups, so each key's BN statistics come from a random subset of clips.

Memory (Sec. 3.2 "aggregated sequentially"): the paper back-propagates each query's
sub-loss separately so that memory stays that of one clip. The engine calls
``loss.backward()`` once on the returned loss (which is what DDP requires), so here
the online encoder runs on all B x rho clips in one forward and activation memory is
rho times that of one clip; the momentum encoder runs under ``no_grad`` and keeps no
activations. The loss itself is the same as the sequential mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.data.batch import select_rows
from vidssl.distributed import all_gather, rank, world_size
from vidssl.losses.info_nce import multi_positive_info_nce
from vidssl.methods.base import Method, Progress
from vidssl.methods.momentum import ema_update_, momentum_at, momentum_copy
from vidssl.methods.queue import KeyQueue
from vidssl.methods.rho import split_views
from vidssl.models.heads import MLP


@dataclass
class MoCoConfig:
    dim: int = 128  # d_MoCo (App. B.1)
    hidden_dim: int = 2048
    mlp_layers: int = 3  # Table 16: 3 layers (2 hidden)
    mlp_bn: bool = False  # Fig. 5: BN in the MoCo head hurts
    temperature: float = 0.1
    queue_size: int = 65536
    momentum: float = 0.994  # m0 of the cosine annealing (Table 15)
    shuffle_bn: bool = True
    bn_splits: int = 2  # one process: the momentum encoder sees the shuffled keys in this many groups


class MoCo(Method):
    def __init__(self, cfg: MoCoConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        if cfg.bn_splits < 1:
            raise ValueError(f"bad value for 'method.bn_splits': {cfg.bn_splits} (must be >= 1)")
        self.cfg = cfg
        self.backbone = backbone
        self.head = MLP(backbone.feat_dim, cfg.hidden_dim, cfg.dim, cfg.mlp_layers, bn=cfg.mlp_bn)
        self.backbone_m = momentum_copy(self.backbone)
        self.head_m = momentum_copy(self.head)
        self.queue = KeyQueue(cfg.queue_size, cfg.dim)
        self.momentum = cfg.momentum

    def _keys(self, x) -> torch.Tensor:
        """Momentum-encoder keys [N, dim] (unit norm) of the flattened clips, with shuffle-BN."""
        encode = lambda clips: F.normalize(self.head_m(self.backbone_m(*clips)), dim=1)  # noqa: E731
        if not (self.cfg.shuffle_bn and self.training):
            return encode(x)
        n = x[0].shape[0]  # flattened clips
        world = world_size()
        # the same permutation on every process, without communication
        gen = torch.Generator().manual_seed(7919 * self.progress.epoch + self.progress.step)
        if world > 1:
            x_all = tuple(all_gather(p) for p in x)  # [N * W, ...] per pathway
            perm = torch.randperm(n * world, generator=gen).to(self.queue.queue.device)
            mine = perm[rank() * n:(rank() + 1) * n]  # this process encodes a random share of all clips
            k_all = all_gather(encode(select_rows(x_all, mine)))  # keys in shuffled order
            k = torch.empty_like(k_all)
            k[perm] = k_all  # unshuffle
            return k[rank() * n:(rank() + 1) * n]
        splits = min(self.cfg.bn_splits, n)
        if splits == 1:
            return encode(x)
        perm = torch.randperm(n, generator=gen)
        k = None
        for group in perm.chunk(splits):
            group = group.to(self.queue.queue.device)
            kg = encode(select_rows(x, group))
            if k is None:
                k = kg.new_empty(n, kg.shape[1])
            k[group] = kg
        return k

    def forward(self, batch: dict) -> dict:
        x, b, rho = split_views(batch["clips"], "rho-MoCo")  # [B*rho, C, T, H, W]
        q = self.head(self.backbone(*x)).view(b, rho, -1)  # queries [B, rho, dim]
        with torch.no_grad():
            k = self._keys(x).view(b, rho, -1)  # keys [B, rho, dim]
        # clone: the loss keeps the queue for backward, and the enqueue below writes into it
        negatives = self.queue.queue.clone().detach()  # [K, dim]
        loss, acc = multi_positive_info_nce(q, k, negatives, self.cfg.temperature, return_accuracy=True)
        if self.training:
            self.queue.enqueue(all_gather(k.flatten(0, 1).contiguous()) if world_size() > 1 else k.flatten(0, 1))
        return {"loss": loss, "logs": {"acc": acc.detach(), "momentum": self.momentum}}

    @torch.no_grad()
    def after_step(self, progress: Progress) -> None:
        """theta_m <- m theta_m + (1 - m) theta with m = 1 - (1 - m0)(cos(pi k / K) + 1) / 2."""
        self.momentum = momentum_at(progress.fraction, self.cfg.momentum)
        ema_update_(self.backbone_m, self.backbone, self.momentum)
        ema_update_(self.head_m, self.head, self.momentum)
