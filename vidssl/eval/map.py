"""Mean average precision over classes: the metric of multi-label classification.

Charades (large-scale study App. B.4) is measured in mAP: for each class, the average
precision of the videos ranked by their score for it, then the mean over the classes.
The average precision of one class is the area under its precision-recall steps,

    AP = sum_n (R_n - R_{n-1}) P_n,

over the distinct score thresholds in decreasing order (videos with tied scores enter
together), P_n and R_n the precision and recall at the n-th threshold: the definition of
scikit-learn's ``average_precision_score``, without interpolation. A class with no
positive video in the test set has no recall and no AP; it is left out of the mean, and
``classes_scored`` says how many classes the mean is over.
"""
from __future__ import annotations

import numpy as np


def average_precision(scores, targets) -> float:
    """AP of scores [N] against 0/1 targets [N]; NaN when no target is positive."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(targets, np.float64).reshape(-1) > 0.5
    if s.shape != y.shape:
        raise ValueError(f"average_precision: {s.shape[0]} scores but {y.shape[0]} targets")
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[s[1:] != s[:-1], True]  # the last video of each group of tied scores
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def average_precisions(scores, targets) -> np.ndarray:
    """Per-class AP [K] of scores [N, K] against multi-hot targets [N, K]; NaN for a class
    without a positive."""
    s, y = np.asarray(scores, np.float64), np.asarray(targets, np.float64)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"average_precisions: scores {tuple(s.shape)} and targets {tuple(y.shape)} "
                         "must both be [N, K]")
    return np.array([average_precision(s[:, k], y[:, k]) for k in range(s.shape[1])])


def mean_average_precision(scores, targets) -> tuple[float, int]:
    """(mAP, classes_scored) of scores [N, K] against multi-hot targets [N, K]: the mean AP of
    the classes with at least one positive, and their number (NaN, 0 when there is none)."""
    ap = average_precisions(scores, targets)
    scored = ~np.isnan(ap)
    return (float(ap[scored].mean()) if scored.any() else float("nan")), int(scored.sum())
