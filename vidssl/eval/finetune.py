"""Fine-tuning the whole network with labels (``vidssl eval finetune``).

The encoder of the checkpoint (``--checkpoint random``: random init, the "scratch" row)
gets dropout and a linear classifier and is trained end to end on the labelled
training videos, then tested with multi-view testing.

Protocol and defaults (``eval.finetune_*``, see :class:`vidssl.config.EvalConfig`):

- App. B.6/B.7 of the large-scale study (UCF101 / HMDB51): the training augmentation
  of pre-training (``VideoDataset(train=True)``, one clip per video and epoch), 200
  epochs, batch 64, lr 0.025, 10x step decay at epochs 60, 120, 180, weight decay 0,
  dropout 0.8; inference as for Kinetics (App. B.2: softmax averaged over the views,
  ``eval.views``).
- Dense-trajectory paper Sec. 4.2: the first ResNet block frozen on UCF101, the first
  two on HMDB51 (``eval.finetune_freeze_stages``: conv1 .. convN, weights and BN
  statistics); optionally lr x 0.1 when the validation accuracy stops improving
  (``eval.finetune_schedule=plateau``).
- CPC paper Sec. 4.2.4: early stopping (the best validation epoch is kept), on a
  stratified, deterministic validation split carved from the training videos
  (``eval.finetune_val_fraction``); Sec. 5.3: fine-tuning on a fraction of the labels
  (``eval.label_fraction``, stratified, drawn from the training videos only).

Validation uses one centre clip per video (cheap; it only ranks epochs); the test uses
``data.test_clips`` x ``data.test_crops`` views.
"""
from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from vidssl.errors import ConfigError
from vidssl.eval.features import EvalContext, _to, extract_features
from vidssl.eval.multiview import multiview_metrics
from vidssl.eval.splits import sample_fraction, stratified_split

log = logging.getLogger("vidssl.eval")


def stage_modules(backbone: nn.Module, name: str) -> list[nn.Module]:
    """The modules of stage ``name`` (conv1 .. conv5) of any backbone of :mod:`vidssl.models`.

    Staged 3D nets and the 2D ResNet: ``backbone.stages[name]``; TRN: its 2D net's stage;
    SlowFast: the Slow and Fast stage and the lateral connection out of it.
    """
    if hasattr(backbone, "stages") and name in backbone.stages:
        return [backbone.stages[name]]
    if hasattr(backbone, "cnn"):  # TRN: a 2D ResNet under a relation head
        return stage_modules(backbone.cnn, name)
    if hasattr(backbone, "slow") and hasattr(backbone, "fast"):  # SlowFast
        mods = [backbone.slow[name], backbone.fast[name]]
        return mods + ([backbone.lateral[name]] if name in backbone.lateral else [])
    raise ConfigError(f"cannot find stage {name!r} in backbone {type(backbone).__name__} "
                      f"(stages: {', '.join(getattr(backbone, 'stage_names', []))})")


class FinetuneNet(nn.Module):
    """backbone -> dropout -> linear: clips [N, C, T, H, W] (or pathways) -> logits [N, K].

    The first ``freeze_stages`` stages get no gradient and stay in eval mode, so their
    BatchNorm statistics are frozen too (Kim et al., as followed by the dense-trajectory
    paper Sec. 4.2: fewer free weights against over-fitting on small datasets).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.8, freeze_stages: int = 0):
        super().__init__()
        names = list(getattr(backbone, "stage_names", []))
        if freeze_stages > len(names):
            raise ConfigError(f"bad value for 'eval.finetune_freeze_stages': {freeze_stages} "
                              f"(the backbone has {len(names)} stages: {', '.join(names)})")
        self.backbone = backbone.requires_grad_(True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.feat_dim, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)
        self.frozen_stages = names[:freeze_stages]
        self._frozen = [m for n in self.frozen_stages for m in stage_modules(backbone, n)]
        for m in self._frozen:
            m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self._frozen:  # frozen BN statistics as well as weights
            m.eval()
        return self

    def forward(self, clips) -> torch.Tensor:
        return self.classifier(self.dropout(self.backbone(clips)))


def finetune_subsets(labels: np.ndarray, label_fraction: float, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) into the training manifest, disjoint and stratified.

    The label fraction (the labels available) is drawn first, then the validation split
    is carved from those videos, so both stay inside the training manifest.
    """
    pool = np.arange(len(labels))
    if label_fraction < 1.0:
        pool = sample_fraction(labels, label_fraction, np.random.default_rng([seed, 0xF7AC]))
    tr, va = stratified_split(labels[pool], val_fraction, seed)
    return pool[tr], pool[va]


def predict(model: nn.Module, dataset, ctx: EvalContext, desc: str) -> torch.Tensor:
    """Softmax scores [N, V, K] of every view of every video of ``dataset``, manifest order."""
    model.eval()
    logits, _ = extract_features(model, dataset, batch_size=ctx.cfg.eval.batch_size, workers=ctx.cfg.data.workers,
                                 device=ctx.device, desc=desc, progress=ctx.progress)
    return logits.softmax(-1)


def train_one_epoch(model: FinetuneNet, loader, optimizer, device, progress: bool, desc: str) -> float:
    """One pass over ``loader`` (batches of one clip per video); returns the mean loss."""
    model.train()
    losses = []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        clips = batch["clips"]  # [B, 1, C, T, S, S] (or a list of pathways)
        clips = [c[:, 0] for c in clips] if isinstance(clips, list) else clips[:, 0]
        loss = F.cross_entropy(model(_to(clips, device)), batch["label"].to(device))
        if not torch.isfinite(loss):
            from vidssl.errors import NonFiniteLossError

            raise NonFiniteLossError(f"non-finite fine-tuning loss ({loss.item()}); lower eval.finetune_lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def step_lr(base: float, epoch: int, milestones: list[float], gamma: float) -> float:
    """lr of ``epoch`` (0-based) under the step schedule: base x gamma^(milestones passed)."""
    return base * gamma ** sum(1 for m in milestones if epoch >= m)


def evaluate(ctx: EvalContext) -> dict:
    from vidssl.data.datasets import VideoDataset, build_loader

    e, d, seed = ctx.cfg.eval, ctx.cfg.data, ctx.cfg.train.seed
    train_idx, val_idx = finetune_subsets(np.asarray(ctx.train.labels), e.label_fraction,
                                          e.finetune_val_fraction, seed)
    if e.finetune_schedule == "plateau" and len(val_idx) == 0:
        raise ConfigError("eval.finetune_schedule=plateau needs a validation split: raise "
                          "eval.finetune_val_fraction (the training set gave no validation videos)")
    torch.manual_seed(seed)  # the classifier's initial weights
    model = FinetuneNet(copy.deepcopy(ctx.backbone), ctx.num_classes(), e.finetune_dropout,
                        e.finetune_freeze_stages).to(ctx.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=e.finetune_lr, momentum=e.finetune_momentum, weight_decay=e.finetune_wd)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=e.finetune_gamma,
                                                          patience=e.finetune_lr_patience)
               if e.finetune_schedule == "plateau" else None)

    train_set = VideoDataset(ctx.train.subset(train_idx.tolist()), dataclasses.replace(d, views=1), train=True)
    val_set = (VideoDataset(ctx.train.subset(val_idx.tolist()), dataclasses.replace(d, test_clips=1, test_crops=1),
                            train=False) if len(val_idx) else None)
    val_y = torch.as_tensor(np.asarray(ctx.train.labels)[val_idx], dtype=torch.long)
    batch = min(e.finetune_batch_size, len(train_set))
    best = {"epoch": -1, "val_top1": -1.0, "state": None}
    bar = tqdm(range(e.finetune_epochs), desc="finetune", unit="epoch", disable=not ctx.progress)
    epochs_run = 0
    for epoch in bar:
        if plateau is None:
            for group in optimizer.param_groups:
                group["lr"] = step_lr(e.finetune_lr, epoch, e.finetune_milestones, e.finetune_gamma)
        # a last batch of one video would break BatchNorm in train mode: drop it in that case only
        loader = build_loader(train_set, batch, shuffle=True, seed=seed, epoch=epoch, workers=d.workers,
                              drop_last=len(train_set) % batch == 1)
        loss = train_one_epoch(model, loader, optimizer, ctx.device, ctx.progress, f"epoch {epoch + 1}")
        epochs_run = epoch + 1
        if val_set is None:
            bar.set_postfix(loss=f"{loss:.3f}")
            continue
        val_top1 = multiview_metrics(predict(model, val_set, ctx, "validation"), val_y)["top1"]
        bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_top1:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
        if plateau is not None:
            plateau.step(val_top1)
        if val_top1 > best["val_top1"]:
            best = {"epoch": epoch, "val_top1": val_top1, "state": copy.deepcopy(model.state_dict())}
        elif e.finetune_stop_patience is not None and epoch - best["epoch"] >= e.finetune_stop_patience:
            log.info("early stop after epoch %d (best validation epoch %d)", epoch + 1, best["epoch"] + 1)
            break
    bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])

    test_y = torch.as_tensor(ctx.test.labels, dtype=torch.long)
    probs = predict(model, VideoDataset(ctx.test, d, train=False), ctx, "test")  # [M, V, K]
    return {
        **multiview_metrics(probs, test_y),
        "epochs_run": epochs_run,
        "best_epoch": best["epoch"] + 1 if best["state"] is not None else epochs_run,
        "val_top1": best["val_top1"] if best["state"] is not None else None,
        "num_finetune_train": len(train_idx),
        "num_val": len(val_idx),
        "label_fraction": e.label_fraction,
        "frozen_stages": ",".join(model.frozen_stages) or "none",
    }
