"""A memory bank of one unit vector per video: the video embeddings of VIE.

VIE (Zhuang et al., Sec. 3, "Memory Bank") approximates the set of all video
embeddings E = {e_1 .. e_N} with a bank that keeps, for every video, a running
average of the embeddings of the clips sampled from it so far — the normalised
expectation over clips of VIE Eq. 1. Video IR and Video LA (dense-trajectory paper,
Sec. 3.1-3.2) compute their losses against this bank.

Following the authors' code (see the papers' README):

- initialisation: every entry uniform in [-1/sqrt(D/3), 1/sqrt(D/3)], then
  l2-normalised (the uniform range gives unit expected squared norm);
- update after every optimiser step, for every sampled clip embedding v of video i:
  ``bank[i] = l2norm(m * bank[i] + (1 - m) * l2norm(v))`` with m = 0.5.

The bank is a buffer (``bank``: [N, D]) so it lives in the checkpoint and is never
touched by the optimiser (no weight decay). Under DDP every process holds the whole
bank and applies the (index, vector) pairs of all processes, gathered, in the same
order, so the copies stay identical.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import MemoryBankError


def init_bank(num_samples: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[N, D] unit rows drawn uniform in +-1/sqrt(D/3) then normalised (authors' code)."""
    if num_samples < 1 or dim < 1:
        raise MemoryBankError(f"a memory bank needs num_samples >= 1 and dim >= 1 (got {num_samples}, {dim})")
    std = 1.0 / math.sqrt(dim / 3.0)
    bank = torch.rand(num_samples, dim, generator=generator) * (2 * std) - std
    return F.normalize(bank, dim=1)


def occurrence_rank(index: torch.Tensor) -> torch.Tensor:
    """For every position, how many earlier positions hold the same index.

    index: long [B] -> long [B]. ``[4, 7, 4, 4] -> [0, 0, 1, 2]``. Used to apply the
    updates of a video that appears several times in one step (several views, or
    the same video on several processes) one after the other, in order.
    """
    if index.numel() == 0:
        return index.clone()
    order = torch.argsort(index, stable=True)
    sorted_idx = index[order]
    pos = torch.arange(len(index), device=index.device)
    is_start = torch.ones_like(sorted_idx, dtype=torch.bool)
    is_start[1:] = sorted_idx[1:] != sorted_idx[:-1]
    # position of the first element of each run, carried forward over the run
    run_start = torch.cummax(torch.where(is_start, pos, torch.zeros_like(pos)), dim=0).values
    rank = torch.empty_like(index)
    rank[order] = pos - run_start
    return rank


class MemoryBank(nn.Module):
    """``bank``: float [N, D] of unit vectors, one per video of the training manifest.

    Args:
        num_samples: N, videos in the training manifest.
        dim: D (128 in the papers).
        momentum: m of the running average (0.5 in the authors' code).
        seed: seed of the initial draw (so that every DDP process starts identical).
    """

    def __init__(self, num_samples: int, dim: int = 128, momentum: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise MemoryBankError(f"bad memory-bank momentum {momentum} (must be in [0, 1))")
        self.momentum = momentum
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("bank", init_bank(num_samples, dim, g))

    @property
    def num_samples(self) -> int:
        return self.bank.shape[0]

    @property
    def dim(self) -> int:
        return self.bank.shape[1]

    def get(self, index: torch.Tensor) -> torch.Tensor:
        """index: long [B] -> [B, D] (a copy, no gradient)."""
        return self.bank.index_select(0, index.to(self.bank.device)).detach()

    def _check(self, index: torch.Tensor, vectors: torch.Tensor) -> None:
        if index.dim() != 1 or vectors.dim() != 2 or len(index) != len(vectors):
            raise MemoryBankError(
                f"memory-bank update needs index [B] and vectors [B, D] (got {tuple(index.shape)} and "
                f"{tuple(vectors.shape)})"
            )
        if vectors.shape[1] != self.dim:
            raise MemoryBankError(f"memory-bank vectors have dimension {vectors.shape[1]}, the bank {self.dim}")
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= self.num_samples):
            raise MemoryBankError(
                f"memory-bank index out of range [0, {self.num_samples}): min {int(index.min())}, "
                f"max {int(index.max())} (does the bank size match the training manifest?)"
            )

    @torch.no_grad()
    def update(self, index: torch.Tensor, vectors: torch.Tensor) -> None:
        """Running-average update with this process's pairs only.

        index: long [B]; vectors: float [B, D] (normalised here). A video that
        appears k times is updated k times, in the order of appearance.
        """
        self._check(index, vectors)
        index = index.to(self.bank.device)
        v = F.normalize(vectors.detach().to(self.bank.device, self.bank.dtype), dim=1)
        rank = occurrence_rank(index)
        m = self.momentum
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            sel = rank == r  # at most one entry per video in this round
            idx = index[sel]
            new = F.normalize(m * self.bank.index_select(0, idx) + (1 - m) * v[sel], dim=1)
            self.bank.index_copy_(0, idx, new)

    @torch.no_grad()
    def update_all(self, index: torch.Tensor, vectors: torch.Tensor) -> None:
        """Update with the pairs of ALL processes (all-gathered under DDP, in rank order).

        Every process calls this with its own pairs and ends with the same bank.
        Processes may hold different numbers of pairs (a short last batch): the
        pairs are padded to the longest for the gather and the padding dropped.
        """
        from vidssl.distributed import all_gather, world_size

        if world_size() > 1:
            device = self.bank.device
            index, vectors = index.to(device), vectors.detach().to(device, self.bank.dtype)
            sizes = all_gather(torch.tensor([len(index)], device=device)).tolist()
            longest = max(sizes)
            pad = longest - len(index)
            index = all_gather(F.pad(index, (0, pad)))
            vectors = all_gather(F.pad(vectors, (0, 0, 0, pad)))
            keep = torch.cat([torch.arange(n, device=device) + r * longest for r, n in enumerate(sizes)])
            index, vectors = index[keep], vectors[keep]
        self.update(index, vectors)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, dim={self.dim}, momentum={self.momentum}"
