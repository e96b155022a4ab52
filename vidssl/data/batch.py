"""The clip batch and the few operations on it that methods and the engine share.

``batch["clips"]`` holds the pathways of a batch: one tensor ``[B, V, C, T, H, W]``
for single-pathway backbones, or a sequence of such tensors (slow, fast) for
two-rate ones; every pathway has the same ``[B, V]``. :func:`as_pathways` is the one
place that tells the two apart; the helpers below work on any number of pathways and
give back the same kind they got, so that a backbone gets what it expects.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

Clips = Union[torch.Tensor, Sequence[torch.Tensor]]


def as_pathways(clips: Clips) -> tuple[torch.Tensor, ...]:
    """The pathways of ``clips`` as a tuple (one element for a single tensor)."""
    return tuple(clips) if isinstance(clips, (list, tuple)) else (clips,)


def _like(clips: Clips, pathways: Sequence[torch.Tensor]) -> Clips:
    return list(pathways) if isinstance(clips, (list, tuple)) else pathways[0]


def flatten_views(clips: Clips) -> Clips:
    """``[B, V, C, T, H, W]`` per pathway -> ``[B * V, C, T, H, W]`` (video-major)."""
    return _like(clips, [p.flatten(0, 1) for p in as_pathways(clips)])


def select_rows(clips: Clips, index: torch.Tensor) -> Clips:
    """Rows ``index`` of every pathway (of flattened or unflattened clips)."""
    return _like(clips, [p[index] for p in as_pathways(clips)])


def num_clips(clips: Clips) -> int:
    """Clips in a batch: B x V of ``[B, V, ...]`` pathways."""
    first = as_pathways(clips)[0]
    return int(first.shape[0] * first.shape[1]) if first.ndim >= 6 else int(first.shape[0])


def to_device(x, device: torch.device):
    """A batch (dicts, lists, tuples of tensors) on ``device``; other values unchanged."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x
