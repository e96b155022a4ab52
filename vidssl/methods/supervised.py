"""The supervised baseline: the same backbones trained with labels.

Every view of a video is a training clip with the video's label; the loss is the
cross-entropy averaged over all B x V clips. Dropout before the classifier follows
the fine-tuning protocols of the papers (0.5 in the large-scale study, App. B).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.methods.base import Method


@dataclass
class SupervisedConfig:
    dropout: float = 0.5
    label_smoothing: float = 0.0


class Supervised(Method):
    def __init__(self, cfg: SupervisedConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        if num_classes < 2:
            raise ValueError(
                "the supervised baseline needs a labelled training manifest with at least 2 classes "
                f"(found {num_classes})"
            )
        self.cfg = cfg
        self.backbone = backbone
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(backbone.feat_dim, num_classes)

    def logits(self, clips: torch.Tensor) -> torch.Tensor:
        """clips: [N, C, T, H, W] -> logits [N, num_classes]."""
        return self.classifier(self.dropout(self.backbone(clips)))

    def forward(self, batch: dict) -> dict:
        clips = batch["clips"]  # [B, V, C, T, H, W]
        labels = batch["label"]  # [B]
        if (labels < 0).any():
            raise ValueError("the supervised baseline got unlabelled videos (label -1) in its training manifest")
        b, v = clips.shape[:2]
        logits = self.logits(clips.flatten(0, 1))  # [B*V, K]
        target = labels.repeat_interleave(v)  # [B*V], clip-major within a video
        loss = F.cross_entropy(logits.float(), target, label_smoothing=self.cfg.label_smoothing)
        acc = (logits.argmax(1) == target).float().mean()
        return {"loss": loss, "logs": {"acc": acc.item()}}
