"""Multi-positive NT-Xent: the rho-SimCLR loss.

Large-scale study, Eq. 1 (Sec. 3.2): for every clip i of a video, the positives are
the other rho - 1 clips of the same video and the negatives are all clips of the
OTHER videos of the (all-gathered, App. B.1 "computed synchronized over the full
batch size") batch; the clip itself is left out. Symmetric: every clip is a query
and the loss is the mean over all clips. Embeddings are l2-normalised here;
temperature a = 0.1.

With rho = 2 and all logits equal the loss is log(2B - 1) (B videos in the global batch).

Under DDP a process passes its own clips as ``query`` and the all-gathered clips (with
gradient) as ``keys``; ``query_index`` says which rows of ``keys`` are its own videos.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from vidssl.errors import RhoLossError
from vidssl.losses._checks import check_temperature, check_views


def multi_positive_nt_xent(query: torch.Tensor, keys: Optional[torch.Tensor] = None,
                           query_index: Optional[torch.Tensor] = None, temperature: float = 0.1,
                           return_accuracy: bool = False):
    """Symmetric rho-SimCLR loss.

    Args:
        query: [b, rho, D] embeddings of this process's videos.
        keys: [N, rho, D] embeddings of all videos of the global batch (default: ``query``).
        query_index: long [b], the row of ``keys`` that holds each query video
            (default: arange(b), i.e. ``keys`` starts with the local videos).
        temperature: a in Eq. 1.
        return_accuracy: also return the share of clips whose nearest other clip is a positive.

    Returns:
        scalar loss (mean over the b x rho query clips), and optionally the accuracy.
    """
    check_views("query", query)
    check_temperature(temperature)
    keys = query if keys is None else keys
    check_views("keys", keys)
    b, rho, d = query.shape
    n = keys.shape[0]
    if keys.shape[1:] != (rho, d):
        raise RhoLossError(f"'keys' must be [N, {rho}, {d}], got {tuple(keys.shape)}")
    if query_index is None:
        query_index = torch.arange(b, device=query.device)
    if query_index.shape != (b,) or int(query_index.min()) < 0 or int(query_index.max()) >= n:
        raise RhoLossError(f"'query_index' must be [b] = [{b}] rows of keys (0..{n - 1}), got {query_index.tolist()}")
    q = F.normalize(query.float(), dim=-1).reshape(b * rho, d)
    k = F.normalize(keys.float(), dim=-1).reshape(n * rho, d)
    logits = q @ k.t() / temperature  # [b*rho, N*rho]
    # key clip c belongs to video c // rho and is clip c % rho of it
    key_video = torch.arange(n * rho, device=q.device) // rho
    key_clip = torch.arange(n * rho, device=q.device) % rho
    q_video = query_index.to(q.device).repeat_interleave(rho)  # [b*rho]
    q_clip = torch.arange(rho, device=q.device).repeat(b)
    same_video = q_video[:, None] == key_video[None, :]
    itself = same_video & (q_clip[:, None] == key_clip[None, :])
    logits = logits.masked_fill(itself, float("-inf"))
    log_den = torch.logsumexp(logits, dim=1)
    log_num = torch.logsumexp(logits.masked_fill(~same_video | itself, float("-inf")), dim=1)
    loss = (log_den - log_num).mean()
    if not return_accuracy:
        return loss
    with torch.no_grad():
        nearest = logits.argmax(dim=1)
        acc = same_video.gather(1, nearest[:, None]).float().mean()
    return loss, acc
