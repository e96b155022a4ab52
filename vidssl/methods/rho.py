"""What the four rho-methods share: the clips of a batch as rho views per video.

Large-scale study, Sec. 3.1: a batch of B videos gives rho B clips, ``clips``: a tuple
of pathways ``[B, rho, C, T, H, W]`` (one, or two for two-pathway backbones;
:mod:`vidssl.data.batch`). The encoders see them flattened video-major,
``[B * rho, C, T, H, W]``, so that embeddings reshape back to ``[B, rho, D]``.

rho >= 2 clips come from different times of the video (the sampler's ``t_max``
bounds how far apart); the paper's rho = 1 row ("two spatial crops at the same
temporal instance", Table 2) is ``data.views=2 data.t_max=0``: two independently
augmented crops of the same clip.
"""
from __future__ import annotations

from vidssl.data.batch import Pathways, batch_views, check_pathways, flatten_views
from vidssl.errors import ClipBatchError, RhoInputError


def split_views(clips: Pathways, method: str) -> tuple[Pathways, int, int]:
    """Pathways ``[B, rho, C, T, H, W]`` -> (pathways ``[B * rho, C, T, H, W]``, B, rho);
    raises :class:`RhoInputError` unless rho >= 2."""
    try:
        check_pathways(clips, f"{method}: batch['clips']")
    except ClipBatchError as e:
        raise RhoInputError(str(e)) from None
    b, rho = batch_views(clips)
    if rho < 2:
        raise RhoInputError(
            f"{method} needs rho >= 2 clips per video (data.views >= 2), got {rho}; for the paper's "
            "rho = 1 setting (two crops of the same clip) use data.views=2 data.t_max=0"
        )
    return flatten_views(clips), b, rho
