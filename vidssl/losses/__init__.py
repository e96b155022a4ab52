"""Losses, one per file, each tested against a slow reference in ``tests/``.

rho-methods (large-scale study, Sec. 3.2): ``info_nce`` (rho-MoCo, queue negatives),
``nt_xent`` (rho-SimCLR, in-batch negatives), ``byol_loss``, ``swav_loss``.
Instance recognition / local aggregation (dense-trajectory paper, VIE): ``ir_nce``,
``local_aggregation``.
"""
from vidssl.errors import RhoLossError
from vidssl.losses.byol_loss import byol_loss
from vidssl.losses.info_nce import multi_positive_info_nce
from vidssl.losses.nt_xent import multi_positive_nt_xent
from vidssl.losses.swav_loss import swav_loss

__all__ = ["RhoLossError", "byol_loss", "multi_positive_info_nce", "multi_positive_nt_xent", "swav_loss"]
