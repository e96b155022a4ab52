"""Momentum (target) encoders with a cosine-annealed momentum.

Large-scale study, App. A.3 and B.1 (after BYOL): the momentum encoder theta_m is a
moving average of the trained encoder theta, theta_m <- m theta_m + (1 - m) theta, with

    m = 1 - (1 - m0) * (cos(pi k / K) + 1) / 2        k = iteration, K = all iterations

so m rises from m0 at k = 0 to 1 at k = K. m0 = 0.994 for MoCo (Table 15), 0.996 for
BYOL. Only parameters are averaged; the target's BN running statistics are its own
(it runs in train mode on its own inputs), as in MoCo and BYOL.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from vidssl.errors import MomentumError


def momentum_at(fraction: float, base: float) -> float:
    """m at training fraction k / K (clipped to [0, 1]), starting from ``base`` (m0)."""
    if not 0.0 <= base <= 1.0:
        raise MomentumError(f"base momentum must be in [0, 1], got {base!r}")
    f = min(1.0, max(0.0, float(fraction)))
    return 1.0 - (1.0 - base) * (math.cos(math.pi * f) + 1.0) / 2.0


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of ``module`` (no parameter requires grad): the momentum encoder."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, m: float) -> None:
    """theta_m <- m theta_m + (1 - m) theta over the parameters (in place)."""
    if not 0.0 <= m <= 1.0:
        raise MomentumError(f"momentum must be in [0, 1], got {m!r}")
    t_params = list(target.parameters())
    o_params = list(online.parameters())
    if len(t_params) != len(o_params) or any(a.shape != b.shape for a, b in zip(t_params, o_params)):
        raise MomentumError("the momentum encoder and the online encoder have different parameters")
    if not t_params:
        return
    torch._foreach_mul_(t_params, m)
    torch._foreach_add_(t_params, [p.detach() for p in o_params], alpha=1.0 - m)
