"""rho-BYOL loss: 2 - 2 cos between online predictions and momentum-encoder targets.

Large-scale study, Eq. 2 and App. B.1 ("the negative cosine similarity ... multiplied
by 2, which is equivalent to BYOL's MSE of l2-normalised vectors"): for every clip i
of a video the online prediction p_i is pulled towards the momentum-encoder
projections z_j of the OTHER rho - 1 clips; the symmetric loss is the mean over all
rho sub-losses.

Eq. 2 sums over the positives; we average over them so that the value (in [0, 4])
and, with SGD, the gradient scale do not change with rho. For rho = 2 the two agree;
for rho > 2 they differ by the constant rho - 1, which LARS (the paper's optimiser for
BYOL) removes anyway since its per-layer step is ||w|| / ||g|| times the learning rate.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.losses._checks import check_same, check_views, other_clips_mask


def byol_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric rho-BYOL loss.

    Args:
        pred: [B, rho, D] online predictions q = predictor(projector(f(x))).
        target: [B, rho, D] momentum-encoder projections of the same clips (constants).

    Returns:
        scalar: mean over B videos, rho queries and the rho - 1 positives of 2 - 2 cos(p_i, z_j).
    """
    check_views("pred", pred)
    check_same("pred", pred, "target", target)
    rho = pred.shape[1]
    p = F.normalize(pred.float(), dim=-1)
    z = F.normalize(target.float(), dim=-1).detach()
    cos = torch.einsum("bid,bjd->bij", p, z)  # [B, rho, rho]: prediction i vs target j
    mask = other_clips_mask(rho, p.device)
    per_query = (2 - 2 * cos)[:, mask].reshape(pred.shape[0], rho, rho - 1).mean(-1)  # [B, rho]
    return per_query.mean()
