"""The MoCo queue of negative keys (large-scale study, App. B.1: 65536 entries).

The queue and its write pointer are buffers, so they travel in the checkpoint and a
resumed run sees the same negatives. It starts as random unit vectors (as MoCo).
rho-MoCo enqueues all rho keys of every video of the global batch each step.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import QueueError


class KeyQueue(nn.Module):
    """A ring buffer ``queue: [size, dim]`` of l2-normalised keys, oldest overwritten first."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        for name, v in (("size", size), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise QueueError(f"queue '{name}' must be an integer >= 1, got {v!r}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys: [N, dim]`` (N <= size) after the newest entries, wrapping around."""
        if keys.dim() != 2 or keys.shape[1] != self.queue.shape[1]:
            raise QueueError(f"keys must be [N, {self.queue.shape[1]}], got {tuple(keys.shape)}")
        n = keys.shape[0]
        if n > self.size:
            raise QueueError(f"cannot enqueue {n} keys into a queue of {self.size} (method.queue_size too small "
                             "for the global batch x rho)")
        idx = (self.ptr + torch.arange(n, device=self.queue.device)) % self.size
        self.queue[idx] = keys.detach().to(self.queue.dtype)
        self.ptr.fill_(int((self.ptr + n) % self.size))
