"""Few-shot linear classification on frozen features.

The dense-trajectory paper (Sec. 4.4, Table 2; protocol of Chen et al. 2019): the
network is frozen and a linear classifier is learned from k labelled training videos
per class (k = 1, 5, 10, 20, and all), tested on the whole test set. Every k is
repeated over several random support sets; the mean and the standard deviation are
reported. Support sets are drawn from the training manifest only, exactly k videos per
class, so no test video can leak into them.
"""
from __future__ import annotations

import numpy as np
import torch

from vidssl.eval.features import EvalContext
from vidssl.eval.knn import topk_accuracy
from vidssl.eval.linear import multiview_scores, train_linear


def sample_support(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of exactly ``shots`` videos of every class present in ``labels`` [N]."""
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < shots:
            raise ValueError(f"{shots}-shot needs {shots} training videos of class {c}; it has {len(members)}")
        picks.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(picks))


def linear_accuracy(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                    num_classes: int, epochs: int, lr: float, wd: float, seed: int) -> float:
    """Video-level top-1 of a linear probe trained on every view of train_f [n, V, D]."""
    v = train_f.shape[1]
    model = train_linear(train_f.flatten(0, 1), train_y.repeat_interleave(v), num_classes, epochs=epochs,
                         lr=lr, weight_decay=wd, batch_size=256, seed=seed)
    _, video_scores = multiview_scores(model, test_f)
    return topk_accuracy(video_scores, test_y, 1)


def evaluate(ctx: EvalContext) -> dict:
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")
    num_classes = max(len(ctx.train.classes), int(train_y.max()) + 1, int(test_y.max()) + 1)
    e = ctx.cfg.eval
    out = {"draws": e.fewshot_draws, "views": int(test_f.shape[1])}
    labels = train_y.numpy()
    for shots in e.fewshot_shots:
        accs = []
        for draw in range(e.fewshot_draws):
            rng = np.random.default_rng([ctx.cfg.train.seed, shots, draw])
            idx = torch.as_tensor(sample_support(labels, shots, rng))
            accs.append(linear_accuracy(train_f[idx], train_y[idx], test_f, test_y, num_classes,
                                        e.linear_epochs, e.linear_lr, e.linear_wd, seed=draw))
        out[f"{shots}shot"] = float(np.mean(accs))
        out[f"{shots}shot_std"] = float(np.std(accs))
    out["all"] = linear_accuracy(train_f, train_y, test_f, test_y, num_classes, e.linear_epochs, e.linear_lr,
                                 e.linear_wd, seed=0)
    out["top1"] = out["all"]
    return out
