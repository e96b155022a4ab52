"""Fine-tuning the whole network with labels (``vidssl eval finetune``), on the engine.

The protocol is a recipe for :func:`vidssl.engine.trainer.train`: the supervised method
(:mod:`vidssl.methods.supervised`) started from the checkpoint's weights
(``train.init_from``; ``--checkpoint random``: random init, the "scratch" row), so it
runs under DDP (``torchrun ... -m vidssl eval finetune``), with bf16 autocast on CUDA,
atomic checkpoints and resume (the run directory is named after the fine-tuning
config, so the same command resumes a killed run and a changed one starts anew).
After training, the best validation epoch's weights (``checkpoints/best.pt``; the last
ones without a validation split) are tested with multi-view testing.

Protocol and defaults (``eval.finetune_*``, see :class:`vidssl.config.EvalConfig`):

- App. B.6/B.7 of the large-scale study (UCF101 / HMDB51): the training augmentation
  of pre-training (one clip per video and epoch), 200 epochs, batch 64, lr 0.025,
  10x step decay at epochs 60, 120, 180, weight decay 0, dropout 0.8; inference as
  for Kinetics (App. B.2: softmax averaged over the views, ``eval.views``).
- Dense-trajectory paper Sec. 4.2: the first ResNet block frozen on UCF101, the first
  two on HMDB51 (``eval.finetune_freeze_stages``: weights and BN statistics);
  optionally lr x 0.1 when the validation accuracy stops improving
  (``eval.finetune_schedule=plateau``).
- CPC paper Sec. 4.2.4: early stopping (the best validation epoch is kept), on a
  stratified, deterministic validation split carved from the training videos
  (``eval.finetune_val_fraction``); weight decay towards the pretrained weights
  (``eval.finetune_l2sp``); Sec. 5.3: fine-tuning on a fraction of the labels
  (``eval.label_fraction``, stratified, drawn from the training videos only).

- App. B.4 (Charades): a multi-label manifest (label sets) is detected and fine-tuned with a
  per-class sigmoid and binary cross-entropy, tested with the maximum of the scores over the
  views and reported in mAP (:mod:`vidssl.eval.multilabel`); B.4 trains a fixed schedule, so
  there is no validation split (the last epoch is tested, ``eval.label_fraction`` draws at
  random). ``eval.finetune_clip_scale=2`` doubles the clip (T x tau = 16 x 8 for an 8 x 8
  model) for training and testing.

Validation uses one centre clip per video (cheap; it only ranks epochs); the test uses
``data.test_clips`` x ``data.test_crops`` views. The training drops the last partial
global batch, as every run of the engine does.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import torch
import torch.nn as nn

from vidssl.config import Config, build_config, to_dict
from vidssl.data.datasets import VideoDataset
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.resume import RESUME_FREE_KEYS
from vidssl.engine.trainer import train
from vidssl.errors import ConfigError
from vidssl.eval.features import EvalContext, extract_features, output_dir
from vidssl.eval.multilabel import multilabel_metrics
from vidssl.eval.multiview import multiview_metrics
from vidssl.eval.splits import sample_fraction, stratified_split
from vidssl.methods import build_method


def finetune_subsets(labels: np.ndarray, label_fraction: float, val_fraction: float,
                     seed: int, multi_label: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) into the training manifest, disjoint and stratified.

    The label fraction (the labels available) is drawn first, then the validation split
    is carved from those videos, so both stay inside the training manifest. With
    ``multi_label`` (``labels`` only gives the number of videos) the fraction is drawn at
    random and there is no validation split (App. B.4's fixed schedule).
    """
    pool = np.arange(len(labels))
    if multi_label:
        if label_fraction < 1.0:  # one stratum: a plain random fraction
            pool = sample_fraction(np.zeros(len(labels)), label_fraction, np.random.default_rng([seed, 0xF7AC]))
        return pool, np.arange(0)
    if label_fraction < 1.0:
        pool = sample_fraction(labels, label_fraction, np.random.default_rng([seed, 0xF7AC]))
    tr, va = stratified_split(labels[pool], val_fraction, seed)
    return pool[tr], pool[va]


def finetune_config(ctx: EvalContext, num_train: int, has_val: bool) -> Config:
    """The engine config of the fine-tuning run: ``eval.finetune_*`` mapped onto the
    supervised method, the optimiser and the training loop."""
    e = ctx.cfg.eval
    if e.finetune_clip_scale > 1 and "frames" in ctx.cfg.model.options:
        raise ConfigError(f"eval.finetune_clip_scale={e.finetune_clip_scale} needs a backbone that takes any "
                          f"clip length; {ctx.cfg.model.backbone!r} is built for model.options.frames")
    raw = to_dict(ctx.cfg)
    raw["method"] = {"name": "supervised", "dropout": e.finetune_dropout, "freeze_stages": e.finetune_freeze_stages,
                     "l2sp": e.finetune_l2sp, "multi_label": ctx.multi_label}
    raw["optim"] = {"name": "sgd", "lr": e.finetune_lr, "momentum": e.finetune_momentum,
                    "weight_decay": e.finetune_wd, "schedule": e.finetune_schedule,
                    "milestones": list(e.finetune_milestones), "gamma": e.finetune_gamma,
                    "plateau_patience": e.finetune_lr_patience, "warmup_epochs": 0.0}
    raw["data"].update(batch_size=min(e.finetune_batch_size, num_train), val="",
                       num_frames=raw["data"]["num_frames"] * e.finetune_clip_scale)
    training_views(raw, e)
    raw["train"].update(epochs=e.finetune_epochs, init_from=None if ctx.checkpoint == "random" else ctx.checkpoint,
                        init_backbone_only=True,
                        stop_patience=e.finetune_stop_patience if has_val else None, progress=ctx.progress,
                        max_steps_per_epoch=None, name=None)
    return build_config(raw)


def training_views(raw: dict, e) -> None:
    """The views of a training video in the supervised protocols (finetune, linear_clips), in
    place on a raw config: ``eval.train_views`` clips, drawn independently over the video (a
    ``sequence`` sampler's consecutive segments are a pretraining device); with
    ``eval.view_pooling=mean`` the classifier sees the mean of their features, all with one crop
    (CPC Sec. 3.2 and 4.2.2: "the same random crop is applied"). No colour dropping (ibid.)."""
    d = raw["data"]
    d["views"] = e.train_views
    if d["sampler"] == "sequence":
        d.update(sampler="clips", t_max=None)
    d["augment"]["color_drop_p"] = 0.0
    if e.view_pooling != "none":
        raw["method"]["pool_views"] = True
        d["shared_draw"] = True


def run_name(cfg: Config, train_idx: np.ndarray, val_idx: np.ndarray, prefix: str = "finetune") -> str:
    """``<prefix>_<digest>`` of everything that changes the result (config and subsets)."""
    d = to_dict(cfg)
    for key in RESUME_FREE_KEYS:
        section, _, name = key.partition(".")
        (d.get(section) if name else d).pop(name or section, None)
    blob = json.dumps([d, train_idx.tolist(), val_idx.tolist()], sort_keys=True, default=str)
    return f"{prefix}_" + hashlib.sha1(blob.encode()).hexdigest()[:10]


class _Logits(nn.Module):
    """clips -> logits of a supervised method (what feature extraction calls)."""

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, *clips) -> torch.Tensor:
        return self.method.logits(clips)


def predict(method: nn.Module, dataset, ctx: EvalContext, desc: str) -> torch.Tensor:
    """Softmax scores [N, V, K] of every view of every video of ``dataset``, manifest order
    (a method with ``pool_views``: [N, 1, K], the classifier on the mean feature of the views;
    with ``multi_label``: sigmoid scores)."""
    if getattr(method.cfg, "pool_views", False):
        method.eval()
        feats, _ = extract_features(method.backbone, dataset, batch_size=ctx.cfg.eval.batch_size,
                                    workers=ctx.cfg.data.workers, device=ctx.device, desc=desc, progress=ctx.progress)
        with torch.no_grad():
            logits = method.classifier(method.feature_bn(feats.mean(1).to(ctx.device))).cpu()
        return method.scores(logits).unsqueeze(1)
    model = _Logits(method).eval()
    logits, _ = extract_features(model, dataset, batch_size=ctx.cfg.eval.batch_size, workers=ctx.cfg.data.workers,
                                 device=ctx.device, desc=desc, progress=ctx.progress)
    return method.scores(logits)


def evaluate(ctx: EvalContext) -> dict:
    e, seed = ctx.cfg.eval, ctx.cfg.train.seed
    train_idx, val_idx = finetune_subsets(np.asarray(ctx.train.labels), e.label_fraction,
                                          e.finetune_val_fraction, seed, ctx.multi_label)
    if e.finetune_schedule == "plateau" and ctx.multi_label:
        raise ConfigError("eval.finetune_schedule=plateau ranks epochs by validation top-1, which a multi-label "
                          "manifest has not: use the step schedule (App. B.4)")
    if e.finetune_schedule == "plateau" and len(val_idx) == 0:
        raise ConfigError("eval.finetune_schedule=plateau needs a validation split: raise "
                          "eval.finetune_val_fraction (the training set gave no validation videos)")
    cfg = finetune_config(ctx, len(train_idx), len(val_idx) > 0)
    return train_and_test(ctx, cfg, train_idx, val_idx)


def train_and_test(ctx: EvalContext, cfg: Config, train_idx: np.ndarray, val_idx: np.ndarray,
                   name: str = "finetune") -> dict:
    """Train the supervised method of ``cfg`` on the training videos ``train_idx`` (best epoch
    on ``val_idx`` when there are any), then test it on ``ctx.test`` with multi-view testing;
    the run directory is ``<name>_<digest of the config>`` under the evaluation's folder."""
    e, seed = ctx.cfg.eval, ctx.cfg.train.seed
    d = dataclasses.replace(ctx.cfg.data, num_frames=cfg.data.num_frames)  # test clips as long as the training ones
    train_set = VideoDataset(ctx.train.subset(train_idx.tolist()), cfg.data, train=True)
    val_set = (VideoDataset(ctx.train.subset(val_idx.tolist()), dataclasses.replace(d, test_clips=1, test_crops=1),
                            train=False) if len(val_idx) else None)
    torch.manual_seed(seed)  # the classifier's initial weights (the backbone's come from init_from)
    method = build_method(cfg, num_samples=len(train_set), num_classes=ctx.num_classes())
    nn.init.normal_(method.classifier.weight, std=0.01)  # a fresh, small classifier
    nn.init.zeros_(method.classifier.bias)
    run_dir = train(cfg, output_dir(ctx) / run_name(cfg, train_idx, val_idx, name), dataset=train_set, method=method,
                    val_dataset=val_set)

    best = run_dir / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(best if best.is_file() else run_dir / "checkpoints" / "last.pt")
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    method.load_state_dict(ckpt["model"])
    method.to(ctx.device)
    probs = predict(method, VideoDataset(ctx.test, d, train=False), ctx, "test")  # [M, V, K]
    val = last.get("validation", {})
    if ctx.multi_label:
        metrics = multilabel_metrics(probs, ctx.targets("test"))
    else:
        metrics = multiview_metrics(probs, torch.as_tensor(ctx.test.labels, dtype=torch.long))
    return {
        **metrics,
        "epochs_run": last["epoch"],
        "best_epoch": val.get("best_epoch", -1) if best.is_file() else last["epoch"],
        **({} if ctx.multi_label else {"val_top1": val.get("best_val") if best.is_file() else None}),
        "num_finetune_train": len(train_idx),
        "num_val": len(val_idx),
        "label_fraction": e.label_fraction,
        "clip_frames": cfg.data.num_frames,
        "frozen_stages": ",".join(method.frozen_stages) or "none",
        "run_dir": str(run_dir),
    }

