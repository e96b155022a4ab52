"""Video Instance Recognition (dense-trajectory paper Sec. 3.1; VIE Sec. 3, Eq. 2-3).

Every video is its own class. A clip x of video i is embedded as
``v = l2norm(W backbone(x))`` (a linear layer from ``backbone.feat_dim`` to 128,
then l2-normalisation, as in the authors' code) and classified against the memory
bank of video embeddings (:mod:`vidssl.methods.memory_bank`) with a non-parametric
softmax at temperature 0.07 (Eq. 2)::

    clips [B, V, C, T, H, W] -> backbone [B*V, F] -> linear [B*V, 128] -> l2norm -> v
    loss = -log P(i | v),  P(i | v) = exp(v . d_i / tau) / sum_j exp(v . d_j / tau)

The denominator is estimated with NCE and 4096 noise samples (Sec. 4.2), or
computed exactly (``loss: softmax``); ``loss: auto`` uses the exact softmax when
the bank has no more rows than the NCE would draw noise samples (N <= 4096), where
it costs no more, and NCE otherwise. After every optimiser step the bank entries of
the batch's videos move towards the new embeddings (running average, m = 0.5).

The weight decay term lambda ||theta||^2 of VIE Eq. 3 is the optimiser's weight
decay (``optim.weight_decay``, 1e-4 as in Zhuang et al.); the bank is a buffer and
is not decayed. Views (V > 1) are treated as independent samples of their video.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.data.batch import batch_views, check_pathways
from vidssl.data.batch import flatten_views as batch_flatten
from vidssl.errors import ConfigError
from vidssl.losses.ir_nce import NCEIRLoss, softmax_ir_loss
from vidssl.methods.base import Method
from vidssl.methods.memory_bank import MemoryBank


@dataclass
class InstanceRecognitionConfig:
    embed_dim: int = 128  # Sec. 4.2: "The embedding dimension ... is set to 128"
    temperature: float = 0.07  # tau of Eq. 2 (Sec. 4.2, following Wu et al.)
    loss: Literal["auto", "nce", "softmax"] = "auto"  # auto: softmax when N <= noise_samples, else NCE
    noise_samples: int = 4096  # Sec. 4.2: 4096 negatives for the NCE denominator
    bank_momentum: float = 0.5  # authors' code: new = l2norm(m old + (1 - m) l2norm(v))
    bank_seed: int = 0  # seed of the bank's initial draw (identical on every DDP process)

    def __post_init__(self):
        for key in ("embed_dim", "noise_samples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"bad value for 'method.{key}': {getattr(self, key)} (must be >= 1)")
        if self.temperature <= 0:
            raise ConfigError(f"bad value for 'method.temperature': {self.temperature} (must be > 0)")
        if not 0 <= self.bank_momentum < 1:
            raise ConfigError(f"bad value for 'method.bank_momentum': {self.bank_momentum} (must be in [0, 1))")


def flatten_views(batch: dict) -> tuple[tuple, torch.Tensor]:
    """batch -> (pathways [B*V, C, T, H, W], index long [B*V]).

    The V views of a video become V samples with the same video index (view-major
    within a video, matching ``flatten(0, 1)``).
    """
    clips = check_pathways(batch["clips"], "batch['clips']")
    b, v = batch_views(clips)
    index = batch["index"]
    if index.shape != (b,):
        raise ValueError(f"batch['index'] must be [B] = [{b}] (got {tuple(index.shape)})")
    return batch_flatten(clips), index.repeat_interleave(v)


class InstanceRecognition(Method):
    """Video IR: ``backbone`` + ``embed`` (Linear F -> 128) + ``memory_bank`` [N, 128]."""

    def __init__(self, cfg: InstanceRecognitionConfig, backbone: nn.Module, *, num_samples: int, num_classes: int = 0):
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"instance recognition needs at least 2 training videos (got {num_samples})")
        self.cfg = cfg
        self.backbone = backbone
        self.embed = nn.Linear(backbone.feat_dim, cfg.embed_dim)
        self.memory_bank = MemoryBank(num_samples, cfg.embed_dim, cfg.bank_momentum, seed=cfg.bank_seed)
        # Always built (one buffer) so that the key ``ir_loss.log_z`` is the same in IR and LA.
        self.ir_loss = NCEIRLoss(num_samples, cfg.noise_samples, cfg.temperature)
        self.ir_mode = cfg.loss if cfg.loss != "auto" else ("softmax" if num_samples <= cfg.noise_samples else "nce")
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def num_samples(self) -> int:
        return self.memory_bank.num_samples

    def embed_clips(self, clips: tuple) -> torch.Tensor:
        """clips: pathways [N, C, T, H, W] -> unit embeddings [N, embed_dim], float32."""
        return F.normalize(self.embed(self.backbone(*clips)).float(), dim=1)

    def instance_loss(self, v: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """IR loss of embeddings v [B, D] of videos index [B] against the bank."""
        bank = self.memory_bank.bank
        if self.ir_mode == "softmax":
            return softmax_ir_loss(v, bank, index, self.cfg.temperature)
        return self.ir_loss(v, bank, index)

    def stash(self, index: torch.Tensor, v: torch.Tensor) -> None:
        """Keep this step's (index, embedding) pairs for the bank update in after_step."""
        if self.training:
            self._pending = (index.detach(), v.detach())

    def forward(self, batch: dict) -> dict:
        clips, index = flatten_views(batch)
        index = index.to(self.memory_bank.bank.device)
        v = self.embed_clips(clips)  # [B*V, D]
        loss = self.instance_loss(v, index)
        self.stash(index, v)
        with torch.no_grad():
            pos = (v * self.memory_bank.get(index)).sum(1).mean()
        logs = {"pos_sim": pos}
        if self.ir_mode == "nce":
            logs["log_z"] = self.ir_loss.log_z.detach().clone()
        return {"loss": loss, "logs": logs}

    def after_step(self, progress) -> None:
        """Memory-bank update with this step's embeddings (of all DDP processes)."""
        if self._pending is not None:
            index, v = self._pending
            self._pending = None
            self.memory_bank.update_all(index, v)
