"""The supervised baseline and fine-tuning: the same backbones trained with labels.

Every view of a video is a training clip with the video's label; the loss is the
cross-entropy averaged over all B x V clips. Dropout before the classifier follows
the fine-tuning protocols of the papers (0.5 in the large-scale study, App. B; 0.8 for
UCF101/HMDB51 fine-tuning, App. B.6/B.7).

Fine-tuning is this method started from a pretrained encoder (``train.init_from``),
with the options the papers use:

- ``freeze_stages``: conv1 .. convN get no gradient and stay in eval mode, so their
  BatchNorm statistics are frozen too (dense-trajectory paper Sec. 4.2, after Kim et
  al.: the first block on UCF101, the first two on HMDB51); -1 freezes every stage: with
  ``feature_bn`` this is the linear probe on augmented clips (large-scale study App. B.2,
  :mod:`vidssl.eval.linear_clips`);
- ``l2sp``: weight decay towards the starting weights instead of towards 0
  (L2-SP, Li et al. 2018; CPC paper Sec. 4.2.4): ``l2sp / 2 * ||w - w0||^2`` over the
  backbone's trainable weights, w0 taken when training starts (the ``init_from``
  weights) and kept in the state dict so that a resume keeps them.

- ``multi_label``: several labels per video (Charades-style, large-scale study App. B.4):
  a sigmoid per class with binary cross-entropy against the batch's ``multi_hot`` targets
  [B, K], and a video's score of a class is the maximum over its views (App. B.4: "we
  spatiotemporally max-pool prediction scores in testing").

:meth:`Supervised.predict` gives the scores the engine's validation (best epoch,
plateau schedule, early stopping) and the fine-tuning test read.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.data.batch import flatten_views
from vidssl.errors import ConfigError
from vidssl.methods.base import Method
from vidssl.models.base import stage_modules


@dataclass
class SupervisedConfig:
    dropout: float = 0.5
    label_smoothing: float = 0.0
    freeze_stages: int = 0  # conv1 .. convN frozen (weights and BN statistics); 0 trains every stage, -1 none
    # a BatchNorm without affine parameters on the pooled features before the classifier: with
    # every stage frozen (freeze_stages = -1) the model is the linear probe of App. B.2, standardised
    feature_bn: bool = False
    l2sp: float = 0.0  # strength of the decay towards the starting weights; 0 = off
    # classify the mean of the features of a video's V views (CPC Sec. 3.2: the mean of z_t over the
    # segments, then BN) instead of every view on its own
    pool_views: bool = False
    # per-class sigmoid + binary cross-entropy on the batch's multi_hot targets (App. B.4), for
    # manifests with label sets; the video score of a class is the maximum over the views
    multi_label: bool = False


class Supervised(Method):
    def __init__(self, cfg: SupervisedConfig, backbone: nn.Module, *, num_samples: int, num_classes: int):
        super().__init__()
        if num_classes < (1 if cfg.multi_label else 2):
            raise ValueError(
                "the supervised baseline needs a labelled training manifest with at least 2 classes "
                f"(found {num_classes})"
            )
        names = list(getattr(backbone, "stage_names", []))
        if cfg.freeze_stages == -1:
            cfg = dataclasses.replace(cfg, freeze_stages=len(names))
        if not 0 <= cfg.freeze_stages <= len(names):
            raise ConfigError(f"bad value for 'method.freeze_stages': {cfg.freeze_stages} "
                              f"(the backbone has {len(names)} stages: {', '.join(names)})")
        if cfg.l2sp < 0:
            raise ConfigError(f"bad value for 'method.l2sp': {cfg.l2sp} (must be >= 0)")
        self.cfg = cfg
        self.backbone = backbone
        self.dropout = nn.Dropout(cfg.dropout)
        self.feature_bn = nn.BatchNorm1d(backbone.feat_dim, affine=False) if cfg.feature_bn else nn.Identity()
        self.classifier = nn.Linear(backbone.feat_dim, num_classes)
        self.frozen_stages = names[:cfg.freeze_stages]
        self._frozen = [m for n in self.frozen_stages for m in stage_modules(backbone, n)]
        for m in self._frozen:
            m.requires_grad_(False)
        if cfg.l2sp > 0:
            # w0 of every trainable backbone weight, filled by on_train_start
            self.anchor = nn.Module()
            for name, p in self._anchored():
                self.anchor.register_buffer(name.replace(".", "__"), torch.full_like(p, float("nan")))
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in getattr(self, "_frozen", ()):  # frozen BN statistics as well as weights
            m.eval()
        return self

    def _anchored(self):
        return [(n, p) for n, p in self.backbone.named_parameters() if p.requires_grad]

    def on_train_start(self, progress) -> None:
        """Take w0 for L2-SP unless a resume restored it."""
        if self.cfg.l2sp > 0:
            with torch.no_grad():
                for name, p in self._anchored():
                    w0 = getattr(self.anchor, name.replace(".", "__"))
                    if torch.isnan(w0).all():
                        w0.copy_(p)

    def logits(self, clips: tuple, videos: int | None = None) -> torch.Tensor:
        """clips: pathways [N, C, T, H, W] -> logits [N, num_classes]; with ``pool_views`` and
        ``videos = B`` (N = B V, video-major) the features are averaged per video: [B, num_classes]."""
        feats = self.backbone(*clips)
        if self.cfg.pool_views and videos is not None:
            feats = feats.view(videos, -1, feats.shape[-1]).mean(1)
        return self.classifier(self.dropout(self.feature_bn(feats)))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits [..., K] -> class scores: the softmax, or with ``multi_label`` a sigmoid per class."""
        return logits.float().sigmoid() if self.cfg.multi_label else logits.float().softmax(-1)

    @torch.no_grad()
    def predict(self, batch: dict) -> torch.Tensor:
        """Video scores [B, K]: the softmax averaged over the V views of ``clips [B, V, ...]``
        (with ``pool_views``: the softmax of the pooled features; with ``multi_label``: the
        sigmoid scores, their maximum over the views)."""
        b = batch["label"].shape[0]
        probs = self.scores(self.logits(flatten_views(batch["clips"]), b)).view(b, -1, self.classifier.out_features)
        return probs.max(1).values if self.cfg.multi_label else probs.mean(1)

    def _multi_label_loss(self, batch: dict) -> dict:
        """BCE of every view's logits [B * V, K] against its video's multi-hot targets [B, K]."""
        if "multi_hot" not in batch:
            raise ConfigError("method.multi_label needs a multi-label training manifest "
                              "(label sets: a 'labels' column, ';'-separated)")
        targets = batch["multi_hot"].float()  # [B, K]
        logits = self.logits(flatten_views(batch["clips"]), targets.shape[0]).float()  # [B*V, K] ([B, K] pooled)
        targets = targets.repeat_interleave(logits.shape[0] // targets.shape[0], dim=0)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        if self.cfg.l2sp > 0:
            loss = loss + self._l2sp()
        top_hit = targets.gather(1, logits.argmax(1, keepdim=True)).mean()  # the top class is a label
        return {"loss": loss, "logs": {"top_hit": top_hit.detach()}}

    def _l2sp(self) -> torch.Tensor:
        return self.cfg.l2sp / 2 * sum((p - getattr(self.anchor, n.replace(".", "__"))).pow(2).sum()
                                       for n, p in self._anchored())

    def forward(self, batch: dict) -> dict:
        if self.cfg.multi_label:
            return self._multi_label_loss(batch)
        if "multi_hot" in batch:
            raise ConfigError("the training manifest is multi-label (label sets): set method.multi_label=true")
        labels = batch["label"]  # [B]
        if (labels < 0).any():
            raise ValueError("the supervised baseline got unlabelled videos (label -1) in its training manifest")
        logits = self.logits(flatten_views(batch["clips"]), labels.shape[0])  # [B*V, K] ([B, K] pooled)
        target = labels.repeat_interleave(logits.shape[0] // labels.shape[0])  # [B*V], clip-major within a video
        loss = F.cross_entropy(logits.float(), target, label_smoothing=self.cfg.label_smoothing)
        if self.cfg.l2sp > 0:
            loss = loss + self._l2sp()
        acc = (logits.argmax(1) == target).float().mean()
        return {"loss": loss, "logs": {"acc": acc.detach()}}
