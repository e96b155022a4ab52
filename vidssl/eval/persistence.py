"""Temporal persistence of frozen clip features: are clips of one video closer to each
other than to clips of other videos?

The large-scale study's objective (Sec. 3.1) asks for features that are persistent over
time within a video. This protocol measures that directly, without labels: the test
split's clips (``data.test_clips`` uniformly spaced clips per video; the
``data.test_crops`` crops of one clip are averaged first, so only time separates two
clips of a video) are unit-normalised, and

* ``persistence_top1``: the share of clips whose nearest other clip (cosine similarity,
  over all clips of all test videos but itself) comes from the same video;
  ``persistence_chance`` is that share for features without any video structure,
  ``(C - 1) / (N C - 1)``;
* ``within_cos`` / ``between_cos``: the mean cosine similarity of two different clips of
  one video / of clips of two different videos; ``persistence_gap`` is their difference.

With the default spacing the clips of a short video barely overlap (8 x 2 frames each,
4 clips over 64 frames: none); overlapping clips share frames and make the score easy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.errors import ConfigError
from vidssl.eval.features import EvalContext


def clip_features(features: torch.Tensor, crops: int) -> torch.Tensor:
    """[N, clips x crops, D] (clip-major views) -> unit clip features [N, clips, D]
    (the crops of a clip averaged)."""
    n, v, d = features.shape
    if v % crops:
        raise ConfigError(f"{v} views per video is not a whole number of clips of {crops} crops")
    return F.normalize(F.normalize(features, dim=-1).view(n, v // crops, crops, d).mean(2), dim=-1)


def persistence_metrics(clips: torch.Tensor, chunk: int = 4096) -> dict[str, float]:
    """clips: unit features [N, C, D] of C clips of each of N videos (N, C >= 2).

    Memory stays O(chunk x N C): the nearest neighbours are found ``chunk`` clips at a
    time, and the mean similarities come from sums of vectors (the sum of all pairwise
    dot products of a set is the squared norm of its sum), not from the N C x N C matrix.
    """
    n, c, _ = clips.shape
    if n < 2 or c < 2:
        raise ConfigError(f"persistence needs at least 2 videos of at least 2 clips each (got {n} x {c}); "
                          "set data.test_clips >= 2")
    flat = clips.reshape(n * c, -1).double()
    video = torch.arange(n).repeat_interleave(c)
    hits = 0
    for start in range(0, n * c, chunk):
        sims = flat[start:start + chunk] @ flat.T  # [chunk, NC]
        rows = torch.arange(sims.shape[0])
        sims[rows, start + rows] = float("-inf")  # a clip is not its own neighbour
        hits += int((video[sims.argmax(1)] == video[start:start + sims.shape[0]]).sum())
    self_sims = (flat * flat).sum(-1).sum()  # the diagonal (N C for unit vectors)
    all_pairs = flat.sum(0).square().sum() - self_sims
    within_pairs = flat.view(n, c, -1).sum(1).square().sum() - self_sims
    within = (within_pairs / (n * c * (c - 1))).item()
    between = ((all_pairs - within_pairs) / (n * c * (n - 1) * c)).item()
    return {"persistence_top1": hits / (n * c), "persistence_chance": (c - 1) / (n * c - 1),
            "within_cos": within, "between_cos": between, "persistence_gap": within - between}


def evaluate(ctx: EvalContext) -> dict:
    features, _ = ctx.features("test")  # [N, V, D]
    return {**persistence_metrics(clip_features(features, ctx.cfg.data.test_crops)),
            "clips": features.shape[1] // ctx.cfg.data.test_crops}
