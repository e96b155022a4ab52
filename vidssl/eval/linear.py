"""Linear probe on frozen features (the linear classification protocol).

App. B.2 of the large-scale study: a linear classifier on the frozen pooled features
of the last stage, cosine learning rate, weight decay 0. Here the classifier is
trained on cached features of every training view (test-time crops), standardised
with the training statistics (a BatchNorm without affine parameters, as is common
for linear probes), with SGD, momentum 0.9 and a cosine schedule.

Testing is multi-view: every view is classified; clip-level accuracy counts views,
video-level accuracy averages the softmax scores over the views of a video.

On multi-label manifests (Charades-style, App. B.4; :mod:`vidssl.eval.multilabel`) the
classifier has a per-class sigmoid output trained with binary cross-entropy, a video's
score of a class is the maximum over its views, and the metric is mAP.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.config import EvalConfig
from vidssl.eval.features import EvalContext
from vidssl.eval.multilabel import multilabel_metrics
from vidssl.eval.multiview import multiview_metrics


def train_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int = 100, lr: float = 0.1,
                 weight_decay: float = 0.0, batch_size: int = 256, seed: int = 0,
                 multi_label: bool = False) -> nn.Module:
    """Fit ``standardise -> Linear`` on x: [N, D], y: [N] (softmax cross-entropy); with
    ``multi_label``, y: float [N, K] multi-hot targets and binary cross-entropy on a sigmoid per
    class (App. B.4). Returns the model (eval mode)."""
    g = torch.Generator().manual_seed(seed)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    model = nn.Sequential(Standardise(mean, std), nn.Linear(x.shape[1], num_classes))
    nn.init.zeros_(model[1].bias)
    nn.init.normal_(model[1].weight, std=0.01, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = max(1, epochs * steps_per_epoch)
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = (F.binary_cross_entropy_with_logits if multi_label else F.cross_entropy)(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return model.eval()


class Standardise(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


def multiview_scores(model: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """features [N, V, D] -> (clip probabilities [N, V, K], video scores [N, K] = mean over views)."""
    with torch.no_grad():
        probs = model(features.flatten(0, 1)).softmax(-1).view(features.shape[0], features.shape[1], -1)
    return probs, probs.mean(1)


def probe_metrics(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                  num_classes: int, e: EvalConfig, seed: int) -> dict:
    """Train on every view of train_f [n, V, D] (labels train_y [n]); test every view of test_f [M, V', D].

    Returns :func:`vidssl.eval.multiview.multiview_metrics` (top1 = video level).
    """
    v = train_f.shape[1]
    model = train_linear(train_f.flatten(0, 1), train_y.repeat_interleave(v), num_classes, epochs=e.linear_epochs,
                         lr=e.linear_lr, weight_decay=e.linear_wd, batch_size=e.linear_batch_size, seed=seed)
    clip_probs, video_scores = multiview_scores(model, test_f)
    return multiview_metrics(clip_probs, test_y, video_scores)


def multilabel_probe_metrics(train_f: torch.Tensor, train_t: torch.Tensor, test_f: torch.Tensor,
                             test_t: torch.Tensor, e: EvalConfig, seed: int) -> dict:
    """The multi-label probe: train on every view of train_f [n, V, D] with multi-hot targets
    train_t [n, K] (BCE), test every view of test_f [M, V', D] (sigmoid scores, the maximum over a
    video's views) against test_t [M, K]. Returns :func:`vidssl.eval.multilabel.multilabel_metrics`."""
    v = train_f.shape[1]
    model = train_linear(train_f.flatten(0, 1), train_t.repeat_interleave(v, dim=0), train_t.shape[1],
                         epochs=e.linear_epochs, lr=e.linear_lr, weight_decay=e.linear_wd,
                         batch_size=e.linear_batch_size, seed=seed, multi_label=True)
    with torch.no_grad():
        scores = model(test_f.flatten(0, 1)).sigmoid().view(test_f.shape[0], test_f.shape[1], -1)
    return multilabel_metrics(scores, test_t)


def evaluate(ctx: EvalContext) -> dict:
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")
    if ctx.multi_label:
        return multilabel_probe_metrics(train_f, ctx.targets("train"), test_f, ctx.targets("test"), ctx.cfg.eval,
                                        ctx.cfg.train.seed)
    return probe_metrics(train_f, train_y, test_f, test_y, ctx.num_classes(), ctx.cfg.eval, ctx.cfg.train.seed)
