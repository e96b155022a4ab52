"""Shape checks shared by the rho-losses (large-scale study, Sec. 3.2)."""
from __future__ import annotations

import torch

from vidssl.errors import RhoLossError


def check_views(name: str, x: torch.Tensor, min_views: int = 2) -> None:
    """``x`` must be ``[B, rho, D]`` with rho >= ``min_views``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise RhoLossError(f"'{name}' must be a tensor [B, rho, D], got {shape}")
    if x.shape[0] < 1 or x.shape[2] < 1:
        raise RhoLossError(f"'{name}' is empty: shape {tuple(x.shape)}")
    if x.shape[1] < min_views:
        raise RhoLossError(
            f"'{name}' has rho = {x.shape[1]} clips per video; the rho-losses need >= {min_views} "
            "(every clip is a query against the other clips of its video). The paper's rho = 1 row "
            "is two crops of the same clip: data.views=2 data.t_max=0"
        )


def check_same(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise RhoLossError(f"'{name_a}' {tuple(a.shape)} and '{name_b}' {tuple(b.shape)} must have the same shape")


def check_temperature(t: float, name: str = "temperature") -> None:
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0:
        raise RhoLossError(f"'{name}' must be a number > 0, got {t!r}")


def other_clips_mask(rho: int, device=None) -> torch.Tensor:
    """bool [rho, rho]: True where j != i (the positives of clip i are the other clips)."""
    return ~torch.eye(rho, dtype=torch.bool, device=device)
