"""Multi-view testing: the view presets and the clip- / video-level metrics every protocol reports.

A test video is seen through V = N uniformly spaced clips x M spatial crops
(``data.test_clips`` x ``data.test_crops``, clip-major; :class:`vidssl.data.datasets.VideoDataset`).
``eval.views`` is a preset ``"NxM"`` that sets both:

- ``"10x3"``: the large-scale study's 30-view testing (App. B.2: 10 clips, short side 256,
  3 crops along the long side; also B.6/B.7 for UCF101/HMDB51);
- ``"5x1"``: the dense-trajectory paper's testing (Sec. 4.2: five clips, centre crop;
  the paper draws the clips at random, here they are uniform so results are repeatable);
- ``"1x1"``: a single centre clip (quick looks);
- null: keep ``data.test_clips`` / ``data.test_crops``.

Every protocol reports the clip-level accuracy (each view classified on its own) and
the video-level accuracy (the softmax scores averaged over the V views, App. B.2 /
dense-trajectory Sec. 4.2), with ``views`` = V.
"""
from __future__ import annotations

import torch

from vidssl.config import Config, parse_views


def apply_view_preset(cfg: Config) -> Config:
    """Set ``cfg.data.test_clips`` / ``test_crops`` from ``cfg.eval.views`` (in place; returns cfg).
    The preset wins over ``data.*`` so that one key changes the views of every protocol."""
    parsed = parse_views(cfg.eval.views)
    if parsed is not None:
        cfg.data.test_clips, cfg.data.test_crops = parsed
    return cfg


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Share of rows of scores [N, K] whose label [N] is among the k highest scores."""
    k = min(k, scores.shape[1])
    hit = (scores.topk(k, dim=1).indices == labels[:, None]).any(1)
    return hit.float().mean().item()


def multiview_metrics(clip_scores: torch.Tensor, labels: torch.Tensor,
                      video_scores: torch.Tensor | None = None) -> dict:
    """Clip- and video-level accuracy of clip_scores [N, V, K] (probabilities per view).

    ``video_scores`` [N, K] defaults to the mean over the V views (softmax averaging);
    kNN passes its own (the vote of the averaged video embedding). Returns
    ``{"top1", "top5", "clip_top1", "video_top1", "views"}``; ``top1`` is the video level.
    """
    if video_scores is None:
        video_scores = clip_scores.mean(1)
    n, v = clip_scores.shape[:2]
    clip_pred = clip_scores.argmax(-1)  # [N, V]
    video_top1 = topk_accuracy(video_scores, labels, 1)
    return {
        "top1": video_top1,
        "top5": topk_accuracy(video_scores, labels, 5),
        "clip_top1": (clip_pred == labels[:, None]).float().mean().item() if n else 0.0,
        "video_top1": video_top1,
        "views": int(v),
    }
