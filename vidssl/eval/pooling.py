"""How a stage's feature map becomes the feature vector of a clip (the read-out).

Two read-outs of a stage map ``[N, C, T, H, W]`` (``eval.readout_pool``):

- ``global``: the mean over T, H and W, ``[N, C]`` (the pooled output of the backbones).
- ``time_grid``: VIE's read-out (Sec. 4, Table 1): "we average the features of such models
  along the temporal dimension before readout", so that a multi-frame model gets no more
  read-out parameters than a single-frame one; the spatial layout is kept, adaptive-average
  pooled to a ``G x G`` grid and flattened channel-major, ``[N, C G^2]``.

VIE follows Zhuang et al. (2019) for the transfer protocol; the paper gives no grid. The
usual choice of that protocol line (Zhang et al. 2016, Wu et al. 2018) is to pool every
layer to about the same number of features (~9,000), so that no layer wins by having more
read-out weights. At the papers' width (ResNet-18, w = 64: 64, 64, 128, 256, 512 channels
in conv1 .. conv5) the grids of :data:`DEFAULT_GRIDS` give 9216, 9216, 8192, 9216, 8192
features. ``eval.readout_grid=G`` sets one G for every stage.

With an adaptive pool the grid, and so the number of features, depends on the stage's
channels only, not on its spatial size, time length or the backbone family: at one width
r3d18, r2plus1d18, slow_r18, resnet2d18, trn (its 2D net's maps) and stacked2d18 have the same
channels per stage and so the same feature count; slowfast_r18 (C_slow + C_fast, the Fast map
averaged over alpha frames) and s3dg (Inception widths) have their own channels on the same
grid. A map smaller than G x G (a tiny input) repeats its cells; the count stays C G^2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.errors import ConfigError

READOUT_POOLS = ("global", "time_grid")
DEFAULT_GRIDS = {"conv1": 12, "conv2": 12, "conv3": 8, "conv4": 6, "conv5": 4}  # ~9k features at w = 64


def readout_grid(stage: str, grid: int | None = None) -> int:
    """G of the ``time_grid`` read-out of ``stage``: ``grid`` if given, else :data:`DEFAULT_GRIDS`."""
    if grid is not None:
        return int(grid)
    if stage not in DEFAULT_GRIDS:
        raise ConfigError(f"no default grid for stage {stage!r} (set eval.readout_grid; defaults for "
                          f"{', '.join(DEFAULT_GRIDS)})")
    return DEFAULT_GRIDS[stage]


def time_grid_pool(fmap: torch.Tensor, grid: int) -> torch.Tensor:
    """[N, C, T, H, W] -> [N, C * grid * grid]: the mean over T, then adaptive average pooling of
    H x W to grid x grid, flattened channel-major (VIE Sec. 4)."""
    if fmap.dim() != 5:
        raise ConfigError(f"the time_grid read-out needs a stage map [N, C, T, H, W], got shape {tuple(fmap.shape)}")
    frame = fmap.float().mean(2)  # [N, C, H, W]
    return F.adaptive_avg_pool2d(frame, grid).flatten(1)


def pool_stage(fmap: torch.Tensor, stage: str, pool: str = "global", grid: int | None = None) -> torch.Tensor:
    """The read-out ``pool`` (``global`` or ``time_grid``) of the map [N, C, T, H, W] of ``stage`` -> [N, D]."""
    if pool == "global":
        return fmap.flatten(2).mean(2).float()
    if pool == "time_grid":
        return time_grid_pool(fmap, readout_grid(stage, grid))
    raise ConfigError(f"bad value for 'eval.readout_pool': {pool!r} (allowed: {', '.join(READOUT_POOLS)})")


def readout_dim(channels: int, stage: str, pool: str = "global", grid: int | None = None) -> int:
    """Features of the read-out of a stage with ``channels`` channels: C, or C G^2 for ``time_grid``."""
    return channels if pool == "global" else channels * readout_grid(stage, grid) ** 2
