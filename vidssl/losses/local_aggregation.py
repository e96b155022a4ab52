"""The Local Aggregation loss (Zhuang et al. 2019; dense-trajectory paper Sec. 3.2, Eq. 3-4).

For an embedding v of video i, with P(j | v) proportional to exp(v . d_j / tau)
over the memory bank d_1..d_N:

- background neighbours B_i: the k entries of the bank with the largest v . d_j
  (k = 4096 in the authors' code); they include close neighbours and hard negatives;
- close neighbours C_i: the videos that share i's cluster in ANY of the m k-means
  clusterings (the union), taken inside B_i;
- loss = -log(P(C_i n B_i | v) / P(B_i | v))
       = -log(sum_{j in C_i n B_i} exp(s_j / tau) / sum_{j in B_i} exp(s_j / tau)).

The authors' code adds 1e-7 to the ratio before the log, which bounds the loss
(to about 16.1) in the rare case where no close neighbour falls inside B_i;
``eps`` keeps that guard (``eps = 0`` gives the plain formula).

Sanity values (the papers' README): one close neighbour among k background
neighbours of equal similarity gives log k; all background neighbours close gives 0.
"""
from __future__ import annotations

import math

import torch

from vidssl.errors import LALossError


def background_neighbours(embeddings: torch.Tensor, bank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of v . bank: (scores [B, k], indices long [B, k]); k is capped at N."""
    scores = embeddings.float() @ bank.detach().float().T  # [B, N]
    return scores.topk(min(k, bank.shape[0]), dim=1, sorted=False)


def close_mask(index: torch.Tensor, neighbour_index: torch.Tensor, cluster_labels: torch.Tensor) -> torch.Tensor:
    """Which background neighbours share a cluster with their video in any clustering.

    index: long [B] (the videos); neighbour_index: long [B, k];
    cluster_labels: long [m, N]. Returns bool [B, k].
    """
    own = cluster_labels[:, index]  # [m, B]
    theirs = cluster_labels[:, neighbour_index]  # [m, B, k]
    return (theirs == own.unsqueeze(2)).any(0)


def la_loss_from_scores(scores: torch.Tensor, close: torch.Tensor, temperature: float = 0.07,
                        eps: float = 1e-7) -> torch.Tensor:
    """scores: [B, k] dot products with the background neighbours; close: bool [B, k].

    Returns the batch mean of -log(sum_close exp(s/tau) / sum_all exp(s/tau) + eps).
    """
    logits = scores.float() / temperature
    log_back = torch.logsumexp(logits, dim=1)  # log P(B|v) + log Z
    has_close = close.any(1, keepdim=True)
    # Rows without a close neighbour get a finite stand-in so that the backward pass of
    # logsumexp stays finite; torch.where then drops them (ratio 0, log -inf).
    masked = torch.where(has_close, logits.masked_fill(~close, float("-inf")), torch.zeros_like(logits))
    log_close = torch.logsumexp(masked, dim=1)
    log_ratio = torch.where(has_close[:, 0], log_close - log_back, torch.full_like(log_back, float("-inf")))
    if eps > 0:
        # log(ratio + eps) without leaving log space
        log_ratio = torch.logaddexp(log_ratio, torch.full_like(log_ratio, math.log(eps)))
    return -log_ratio.mean()


def local_aggregation_loss(embeddings: torch.Tensor, bank: torch.Tensor, index: torch.Tensor,
                           cluster_labels: torch.Tensor, *, background: int = 4096, temperature: float = 0.07,
                           eps: float = 1e-7) -> tuple[torch.Tensor, dict]:
    """The LA loss of a batch.

    Args:
        embeddings: [B, D] unit rows (with gradient).
        bank: [N, D] memory bank (constant).
        index: long [B], each sample's video.
        cluster_labels: long [m, N], the m clusterings of the N videos.
        background: k, background neighbours per sample (capped at N).
        temperature: tau (0.07).
        eps: guard added to the ratio (authors' code: 1e-7).

    Returns:
        (loss, stats) with stats = {"close": mean |C n B|, "background": k}.
    """
    if embeddings.dim() != 2 or bank.dim() != 2 or embeddings.shape[1] != bank.shape[1]:
        raise LALossError(f"LA loss needs embeddings [B, D] and bank [N, D] (got {tuple(embeddings.shape)}, "
                          f"{tuple(bank.shape)})")
    if index.shape != (embeddings.shape[0],):
        raise LALossError(f"LA loss needs index [B] = [{embeddings.shape[0]}] (got {tuple(index.shape)})")
    if cluster_labels.dim() != 2 or cluster_labels.shape[1] != bank.shape[0]:
        raise LALossError(f"LA loss needs cluster_labels [m, N] with N = {bank.shape[0]} "
                          f"(got {tuple(cluster_labels.shape)})")
    if background < 1 or temperature <= 0:
        raise LALossError(f"bad background={background} or temperature={temperature} (both > 0)")
    index = index.to(bank.device)
    scores, nbr = background_neighbours(embeddings, bank, background)  # [B, k]
    close = close_mask(index, nbr, cluster_labels.to(bank.device))  # [B, k]
    loss = la_loss_from_scores(scores, close, temperature, eps)
    return loss, {"close": close.sum(1).float().mean().detach(), "background": int(scores.shape[1])}
