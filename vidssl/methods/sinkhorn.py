"""Sinkhorn-Knopp codes of SwAV (large-scale study, Eq. 3 and App. B.1).

Given scores [N, K] of N samples against K prototypes, the codes are the
equipartitioned soft assignment Q = diag(u) exp(scores / eps) diag(v) with rows
summing to 1 (each sample a distribution) and columns to N / K (every prototype
used equally), approached by alternating normalisations: ``iterations`` = 3 and
eps = 0.05 as in the paper. "The matrix normalization statistics ... are computed
synchronized over the full training batch": under DDP the scores of all processes
are all-gathered (they are small, N x K, and carry no gradient) and every process
runs the same iterations on the global matrix, then keeps its own rows.

Computed in the log domain, so no exp overflows or underflows (the plain-domain
algorithm of the SwAV code gives the same result, see the tests).
"""
from __future__ import annotations

import math

import torch

from vidssl.distributed import all_gather, rank, world_size
from vidssl.errors import SinkhornError


@torch.no_grad()
def sinkhorn_log(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Codes for ``scores: [N, K]`` (single process): rows sum to 1, columns tend to N / K."""
    if scores.dim() != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise SinkhornError(f"scores must be [N, K], got {tuple(scores.shape)}")
    if not epsilon > 0:
        raise SinkhornError(f"epsilon must be > 0, got {epsilon!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise SinkhornError(f"iterations must be an integer >= 1, got {iterations!r}")
    n, k = scores.shape
    log_q = scores.double() / epsilon  # [N, K]
    for _ in range(iterations):
        # every prototype (column) gets total mass 1/K, then every sample (row) mass 1/N
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)
    return (log_q + math.log(n)).exp().to(scores.dtype)  # rows sum to 1


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Codes for this process's ``scores: [n, K]``, normalised over the global batch under DDP.

    Every process must pass the same n (the engine's batches are equal-sized)."""
    world = world_size()
    if world == 1:
        return sinkhorn_log(scores, epsilon, iterations)
    n = scores.shape[0]
    codes = sinkhorn_log(all_gather(scores.contiguous()), epsilon, iterations)  # [n * world, K]
    return codes[rank() * n:(rank() + 1) * n]
