"""Few-shot and fraction-of-labels linear classification on frozen features.

Few-shot (dense-trajectory paper, Sec. 4.4, Table 2; protocol of Chen et al. 2019): the
network is frozen and a linear classifier is learned from k labelled training videos
per class (``eval.fewshot_shots``: k = 1, 5, 10, 20), and from all of them, tested on
the whole test set.

Fraction of labels (CPC paper, Sec. 5.3, Fig. 4): the same linear probe learned from a
stratified fraction of the training videos (``eval.fewshot_fractions``: 5 %, 18 %, 100 %;
``max(1, round(f * n_c))`` videos of each class).

Every k and every fraction below 1 is repeated over ``eval.fewshot_draws`` random
subsets; the mean and the standard deviation over draws are reported (keys ``5shot`` /
``5shot_std``, ``frac0.05`` / ``frac0.05_std``). Subsets are drawn from the training
manifest only (:mod:`vidssl.eval.splits`), so no test video can leak into them. All
accuracies are video level (softmax averaged over the test views); ``all`` also reports
``clip_top1`` / ``video_top1`` / ``views`` (:mod:`vidssl.eval.multiview`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from vidssl.eval.features import EvalContext
from vidssl.eval.linear import probe_metrics
from vidssl.eval.multilabel import require_single_label
from vidssl.eval.splits import sample_fraction, sample_support

__all__ = ["sample_support", "sample_fraction", "repeated_probe", "fraction_key", "evaluate"]


def fraction_key(fraction: float) -> str:
    """0.05 -> 'frac0.05', 1.0 -> 'frac1'."""
    return f"frac{fraction:g}"


def repeated_probe(draw_subset: Callable[[np.random.Generator], np.ndarray], draws: int, seed: tuple,
                   probe: Callable[[torch.Tensor, int], float]) -> tuple[float, float]:
    """(mean, std) over ``draws`` of ``probe(subset indices, draw)``; draw d uses rng [*seed, d]."""
    accs = []
    for draw in range(draws):
        idx = torch.as_tensor(draw_subset(np.random.default_rng([*seed, draw])))
        accs.append(probe(idx, draw))
    return float(np.mean(accs)), float(np.std(accs))


def evaluate(ctx: EvalContext) -> dict:
    require_single_label(ctx, "fewshot")
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")
    num_classes, e, seed = ctx.num_classes(), ctx.cfg.eval, ctx.cfg.train.seed
    labels = train_y.numpy()

    def probe(idx: torch.Tensor, draw: int) -> float:
        return probe_metrics(train_f[idx], train_y[idx], test_f, test_y, num_classes, e, seed=draw)["top1"]

    full = probe_metrics(train_f, train_y, test_f, test_y, num_classes, e, seed=0)
    out = {"draws": e.fewshot_draws, "views": full["views"]}
    for shots in e.fewshot_shots:
        mean, std = repeated_probe(lambda rng: sample_support(labels, shots, rng), e.fewshot_draws,
                                   (seed, shots), probe)
        out[f"{shots}shot"], out[f"{shots}shot_std"] = mean, std
    for fraction in e.fewshot_fractions:
        key = fraction_key(fraction)
        if fraction >= 1.0:  # every draw is the whole training set
            out[key], out[key + "_std"] = full["top1"], 0.0
            continue
        # the fraction in thousandths keys the draws, so 5 % draws never equal 18 % draws
        mean, std = repeated_probe(lambda rng: sample_fraction(labels, fraction, rng), e.fewshot_draws,
                                   (seed, 1000 + round(fraction * 1000)), probe)
        out[key], out[key + "_std"] = mean, std
    out["all"] = full["top1"]
    out.update(full)  # top1 (= all), top5, clip_top1, video_top1, views
    return out
