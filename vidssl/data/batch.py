"""The clip batch and the operations on it that methods, evaluation and the engine share.

``batch["clips"]`` is always a tuple of pathways: one tensor ``[B, V, C, T, H, W]`` for
single-pathway backbones, (slow, fast) for two-rate ones, every pathway with the same
``[B, V]``. A backbone takes the pathways as arguments, ``backbone(*pathways)``, so no
method or engine code asks how many there are.
"""
from __future__ import annotations

import torch

from vidssl.errors import ClipBatchError

Pathways = tuple  # tuple[torch.Tensor, ...]


def check_pathways(clips, who: str = "clips") -> Pathways:
    """``clips`` if it is a non-empty tuple of 6-d tensors ``[B, V, C, T, H, W]`` that agree on
    their first two sizes, else a one-line :class:`~vidssl.errors.ClipBatchError` naming the problem."""
    if not isinstance(clips, tuple) or not clips or not all(isinstance(p, torch.Tensor) for p in clips):
        raise ClipBatchError(f"{who} must be a tuple of pathway tensors [B, V, C, T, H, W], got "
                            f"{type(clips).__name__}")
    shapes = [tuple(p.shape) for p in clips]
    if any(len(s) != 6 for s in shapes) or len({s[:2] for s in shapes}) != 1:
        raise ClipBatchError(f"{who}: every pathway must be [B, V, C, T, H, W] with the same leading sizes, "
                             f"got {shapes}")
    return clips


def flatten_views(clips: Pathways) -> Pathways:
    """``[B, V, C, T, H, W]`` per pathway -> ``[B * V, C, T, H, W]`` (video-major)."""
    return tuple(p.flatten(0, 1) for p in clips)


def select_rows(clips: Pathways, index: torch.Tensor) -> Pathways:
    """Rows ``index`` of every pathway."""
    return tuple(p[index] for p in clips)


def batch_views(clips: Pathways) -> tuple[int, int]:
    """(B, V) of ``[B, V, ...]`` pathways."""
    b, v = clips[0].shape[:2]
    return int(b), int(v)


def num_clips(clips: Pathways) -> int:
    """Clips in a batch: B x V of ``[B, V, ...]`` pathways."""
    b, v = batch_views(clips)
    return b * v


def to_device(x, device: torch.device):
    """A batch (dicts, lists, tuples of tensors) on ``device``; other values unchanged."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x
