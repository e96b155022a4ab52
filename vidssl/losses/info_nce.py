"""Multi-positive InfoNCE against a queue of negatives: the rho-MoCo loss.

Large-scale study, Eq. 1 with several positives per query (Sec. 3.1-3.2)::

    L_q = -log( sum_{k in K+} exp(q.k / a) / sum_{k in K+ u K-} exp(q.k / a) )

For every clip i of a video (a query q_i from the online encoder) the positives K+
are the momentum-encoder keys of the OTHER rho - 1 clips of the same video, the
negatives K- are the queue (keys of earlier batches). The symmetric loss is the
mean over all rho sub-losses (Sec. 3.2, "Implementation specifics") and over the
batch. All embeddings are l2-normalised here (cosine similarity); a = 0.1 (App. B.1).

With rho = 2 this is MoCo's usual cross-entropy with the positive at index 0; with
all logits equal and one positive the loss is log(1 + queue size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.errors import RhoLossError
from vidssl.losses._checks import check_same, check_temperature, check_views, other_clips_mask


def multi_positive_info_nce(query: torch.Tensor, keys: torch.Tensor, queue: torch.Tensor,
                            temperature: float = 0.1, return_accuracy: bool = False):
    """Symmetric rho-MoCo loss.

    Args:
        query: [B, rho, D] online-encoder embeddings (gradient flows here).
        keys: [B, rho, D] momentum-encoder embeddings of the same clips (constants).
        queue: [K, D] negatives (constants; K may be 0 for a positives-only check).
        temperature: a in Eq. 1.
        return_accuracy: also return the share of queries whose best-scoring key is a positive.

    Returns:
        scalar loss (mean over B x rho queries), and optionally the accuracy (float tensor).
    """
    check_views("query", query)
    check_same("query", query, "keys", keys)
    check_temperature(temperature)
    if queue.dim() != 2 or queue.shape[1] != query.shape[2]:
        raise RhoLossError(f"'queue' must be [K, {query.shape[2]}], got {tuple(queue.shape)}")
    rho = query.shape[1]
    q = F.normalize(query.float(), dim=-1)
    k = F.normalize(keys.float(), dim=-1).detach()
    n = F.normalize(queue.float(), dim=-1).detach()
    pos = torch.einsum("bid,bjd->bij", q, k) / temperature  # [B, rho, rho]: query i vs key j
    pos = pos.masked_fill(~other_clips_mask(rho, q.device), float("-inf"))  # a clip is not its own positive
    neg = torch.einsum("bid,kd->bik", q, n) / temperature  # [B, rho, K]
    log_num = torch.logsumexp(pos, dim=-1)  # [B, rho]
    log_den = torch.logsumexp(torch.cat([pos, neg], dim=-1), dim=-1)  # [B, rho]
    loss = (log_den - log_num).mean()
    if not return_accuracy:
        return loss
    with torch.no_grad():
        best_pos = pos.max(dim=-1).values
        best_neg = neg.max(dim=-1).values if neg.shape[-1] else torch.full_like(best_pos, float("-inf"))
        acc = (best_pos > best_neg).float().mean()
    return loss, acc
