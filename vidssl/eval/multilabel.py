"""Multi-label classification (Charades-style): view pooling, metrics, and the protocols' check.

A manifest with label sets (:mod:`vidssl.data.multilabel`) is a multi-label task: a
per-class sigmoid output trained with binary cross-entropy (large-scale study App. B.4:
"a per-class sigmoid output is used for multi-class prediction"), and at test time the
video's score of a class is the maximum over its views ("we spatiotemporally max-pool
prediction scores in testing"). The metric is the mean average precision over classes
(:mod:`vidssl.eval.map`); there is no top-1.

``linear``, ``linear_clips`` and ``finetune`` run multi-label when the manifests are; the
protocols that rank single labels (``knn``, ``fewshot``, ``retrieval``) refuse them
(:func:`require_single_label`) instead of computing a number that means nothing.
"""
from __future__ import annotations

import torch

from vidssl.errors import ConfigError
from vidssl.eval.map import mean_average_precision


def require_single_label(ctx, protocol: str) -> None:
    """A one-line :class:`ConfigError` when ``ctx``'s manifests are multi-label."""
    if getattr(ctx, "multi_label", False):
        raise ConfigError(f"vidssl eval {protocol} needs one label per video, but {ctx.train.source} is multi-label "
                          f"(column {ctx.train.label_column!r}); use eval linear, linear_clips or finetune (mAP)")


def max_over_views(clip_scores: torch.Tensor) -> torch.Tensor:
    """clip_scores [N, V, K] -> video scores [N, K]: the maximum over the V views (App. B.4)."""
    return clip_scores.max(1).values


def multilabel_metrics(clip_scores: torch.Tensor, targets: torch.Tensor) -> dict:
    """Video- and clip-level mAP of clip_scores [N, V, K] (sigmoid scores per view) against
    multi-hot targets [N, K].

    ``mAP``: of the video scores, the maximum over the views; ``clip_mAP``: every view
    scored on its own with its video's targets; ``classes_scored``: the classes with a
    positive test video (the others have no AP and are left out); ``num_classes``: K.
    """
    n, v, k = clip_scores.shape
    if targets.shape != (n, k):
        raise ValueError(f"multilabel_metrics: scores {tuple(clip_scores.shape)} and targets "
                         f"{tuple(targets.shape)} do not match ([N, V, K] and [N, K])")
    video_map, scored = mean_average_precision(max_over_views(clip_scores).float(), targets)
    if scored == 0:
        raise ConfigError("the test manifest has no positive label in any class: mAP is undefined")
    clip_map, _ = mean_average_precision(clip_scores.flatten(0, 1).float(), targets.repeat_interleave(v, dim=0))
    return {"mAP": video_map, "clip_mAP": clip_map, "classes_scored": scored, "num_classes": int(k),
            "views": int(v)}
