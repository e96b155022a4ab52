"""The video CPC loss: NCE over every future segment (CPC paper Eq. 1-2, Sec. 3.1).

For video i, context step t and prediction step k (t + k <= T), the prediction
``zhat_{t,t+k} = W_k p(c_t)`` is scored against every candidate ``z`` by a dot
product; the candidates are all ``B x T`` segments of the (all-gathered) batch, the
other segments of video i included ("difficult negatives"), so there are
``B T - 1`` negatives. ``L_N = -log softmax(scores)[positive]``. The paper writes the
loss as the sum over i, t, k (Eq. 2); here it is the mean (the same optimum; the
factor goes into the learning rate), so that its scale does not change with B, T or
the number of prediction steps. With all scores equal the loss is ``log(B T)``;
without hard negatives the other segments of video i are removed from its candidates
and it is ``log((B - 1) T + 1)``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from vidssl.errors import CPCLossError


def valid_steps(num_segments: int, max_step: int) -> torch.Tensor:
    """bool ``[T, K]``: prediction (t, k + 1) exists, i.e. ``t + k + 1 < T`` (0-based t)."""
    t = torch.arange(num_segments).unsqueeze(1)
    k = torch.arange(1, max_step + 1).unsqueeze(0)
    return t + k < num_segments


def cpc_nce(pred: torch.Tensor, z: torch.Tensor, candidates: Optional[torch.Tensor] = None, offset: int = 0,
            hard_negatives: bool = True, return_accuracy: bool = False):
    """NCE of the predictions of future segments.

    Args:
        pred: ``[b, T, K, D]``, ``pred[i, t, k - 1] = zhat_{t, t+k}`` of this process's videos
            (entries with ``t + k >= T`` are ignored).
        z: ``[b, T, D]``, the targets ``z_t`` of the same videos.
        candidates: ``[N, T, D]``, the ``z`` of every video of the global batch (default ``z``);
            under DDP the all-gathered ``z``, this process's videos at rows ``offset .. offset + b``.
        hard_negatives: keep the other segments of the same video among the candidates.
        return_accuracy: also return the share of predictions whose best candidate is the
            positive, per step k (``[K]``).

    Returns:
        scalar loss (mean over the valid (i, t, k)), and optionally the accuracy per k.
    """
    if pred.dim() != 4 or z.dim() != 3 or pred.shape[0] != z.shape[0] or pred.shape[1] != z.shape[1] \
            or pred.shape[3] != z.shape[2]:
        raise CPCLossError(f"expected pred [b, T, K, D] and z [b, T, D], got {tuple(pred.shape)} and {tuple(z.shape)}")
    b, T, K, _ = pred.shape
    if T < 2 or not 1 <= K <= T - 1:
        raise CPCLossError(f"need T >= 2 segments and 1 <= K <= T - 1 prediction steps (got T = {T}, K = {K})")
    cand = z if candidates is None else candidates
    if cand.dim() != 3 or cand.shape[1:] != z.shape[1:] or not 0 <= offset <= cand.shape[0] - b:
        raise CPCLossError(f"candidates must be [N, T, D] holding this process's {b} videos at row {offset}; "
                           f"got {tuple(cand.shape)}")
    n = cand.shape[0]
    valid = valid_steps(T, K).to(pred.device)  # [T, K]
    scores = torch.einsum("itkd,md->itkm", pred.float(), cand.flatten(0, 1).float())  # [b, T, K, N T]
    video = torch.arange(b, device=pred.device).view(b, 1, 1) + offset
    target = video * T + (torch.arange(T, device=pred.device).view(1, T, 1)
                          + torch.arange(1, K + 1, device=pred.device).view(1, 1, K))  # [b, T, K]
    if not hard_negatives:
        owner = torch.arange(n * T, device=pred.device) // T  # video of every candidate
        same = owner.view(1, 1, 1, -1) == video.unsqueeze(-1)  # [b, 1, 1, N T]
        positive = F.one_hot(target.clamp_max(n * T - 1), n * T).bool()
        scores = scores.masked_fill(same & ~positive, float("-inf"))
    picked = valid.unsqueeze(0).expand(b, T, K)
    loss = F.cross_entropy(scores[picked], target[picked])
    if not return_accuracy:
        return loss
    with torch.no_grad():
        hit = (scores.argmax(-1) == target).float() * valid  # [b, T, K]
        acc = hit.sum(dim=(0, 1)) / (valid.sum(0) * b)
    return loss, acc
