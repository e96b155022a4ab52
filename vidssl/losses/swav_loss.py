"""rho-SwAV loss: swapped prediction of Sinkhorn codes between the clips of a video.

Large-scale study, Eq. 3 and App. B.1 (SwAV, Caron et al. 2020): every clip's
embedding is scored against learned prototypes; the Sinkhorn-Knopp codes of clip j
(computed without gradient, see :mod:`vidssl.methods.sinkhorn`) are the target of
the prediction softmax(scores_i / a) of every OTHER clip i of the same video::

    L_i = mean_{j != i}  - sum_k codes_j[k] * log softmax(scores_i / a)[k]

which is the KL divergence of Eq. 3 up to the (constant) entropy of the codes. The
symmetric loss is the mean over all rho clips and the batch; a = 0.1. With uniform
scores the loss is log(number of prototypes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.losses._checks import check_same, check_temperature, check_views, other_clips_mask


def swav_loss(scores: torch.Tensor, codes: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric rho-SwAV loss.

    Args:
        scores: [B, rho, K] cosine similarities of each clip's embedding with the K prototypes.
        codes: [B, rho, K] Sinkhorn targets (rows sum to 1; constants).
        temperature: a.

    Returns:
        scalar: mean over B x rho predictions and their rho - 1 targets of the cross-entropy.
    """
    check_views("scores", scores)
    check_same("scores", scores, "codes", codes)
    check_temperature(temperature)
    rho = scores.shape[1]
    log_p = F.log_softmax(scores.float() / temperature, dim=-1)  # [B, rho, K]
    ce = -torch.einsum("bjk,bik->bij", codes.float().detach(), log_p)  # [B, rho(pred i), rho(target j)]
    mask = other_clips_mask(rho, scores.device)
    return ce[:, mask].reshape(scores.shape[0], rho, rho - 1).mean()
