"""Linear probe on augmented random clips (``vidssl eval linear_clips``): the large-scale
study's linear classification protocol as written (App. B.2).

The encoder is frozen (every stage, BatchNorm statistics included) and a linear classifier
on its pooled last-stage features is trained on a fresh random clip of every training video
per epoch, with the training augmentation of the protocol: a random clip, a random crop of
the short-side-jittered frames or its horizontal flip (``data.augment``'s crop and flip; no
colour, grayscale or blur). 60 epochs, SGD with a cosine schedule from a base lr of 4.0 after
8 epochs of linear warm-up, weight decay 0 (``eval.linear_clips_*``). The pooled features are
standardised by a BatchNorm without affine parameters (fixed at test time, so the classifier
stays linear in the features), as the cached-feature probe does (:mod:`vidssl.eval.linear`).
Inference as in App. B.2: the softmax averaged over the test views (``eval.views``). On a
multi-label manifest: a sigmoid per class with binary cross-entropy, the maximum of the scores
over the views, mAP (App. B.4, :mod:`vidssl.eval.multilabel`).

It runs on the engine like ``eval finetune`` (:func:`vidssl.eval.finetune.train_and_test`):
DDP, resume, a run directory named after the config. Unlike ``linear`` it sees a new view of
each video every epoch instead of a few cached ones, at the cost of a forward pass per clip
and epoch.
"""
from __future__ import annotations

import numpy as np

from vidssl.config import Config, build_config, to_dict
from vidssl.eval.features import EvalContext
from vidssl.eval.finetune import train_and_test, training_views


def linear_clips_config(ctx: EvalContext, num_train: int) -> Config:
    """The engine config: the supervised method with every stage frozen and standardised features."""
    e = ctx.cfg.eval
    raw = to_dict(ctx.cfg)
    raw["method"] = {"name": "supervised", "dropout": 0.0, "freeze_stages": -1, "feature_bn": True,
                     "multi_label": ctx.multi_label}
    raw["optim"] = {"name": "sgd", "lr": e.linear_clips_lr, "momentum": 0.9, "weight_decay": 0.0,
                    "schedule": "cosine", "warmup_epochs": e.linear_clips_warmup_epochs}
    raw["data"].update(batch_size=min(e.linear_clips_batch_size, num_train), val="")
    training_views(raw, e)
    raw["data"]["augment"].update(color_p=0.0, grayscale_p=0.0, blur_p=0.0, temporal_diff_p=0.0)
    raw["train"].update(epochs=e.linear_clips_epochs,
                        init_from=None if ctx.checkpoint == "random" else ctx.checkpoint, init_backbone_only=True,
                        stop_patience=None, progress=ctx.progress, max_steps_per_epoch=None, name=None)
    return build_config(raw)


def evaluate(ctx: EvalContext) -> dict:
    train_idx = np.arange(len(ctx.train))
    cfg = linear_clips_config(ctx, len(train_idx))
    out = train_and_test(ctx, cfg, train_idx, np.arange(0), name="linear_clips")
    return {k: v for k, v in out.items() if k not in ("val_top1", "num_val", "label_fraction", "clip_frames")}
