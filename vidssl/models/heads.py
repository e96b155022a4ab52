"""MLP projection / prediction heads of the SSL methods.

Large-scale study, App. B.1 (and the authors' configs): MoCo 3 x 2048 -> 128 without
BN; SimCLR and SwAV 3 x 2048 -> 128 with BN; BYOL projection and predictor
2 x 4096 -> 256 with BN. ``num_layers`` counts the Linear layers:

    num_layers - 1 times: Linear(bias = not bn) -> [BN] -> ReLU
    then:                 Linear -> [BN without affine, if last_bn]
"""
from __future__ import annotations

import torch
import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.base import check_bool, check_int


class MLP(nn.Module):
    """x: [N, in_dim] -> [N, out_dim]. ``num_layers = 1`` is a single Linear layer."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, bn: bool = True,
                 last_bn: bool = False):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim),
                        ("num_layers", num_layers)):
            check_int(name, v)
        check_bool("bn", bn)
        check_bool("last_bn", last_bn)
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(d, hidden_dim, bias=not bn))  # a bias before BN is redundant
            if bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim, bias=not last_bn))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise BackboneError(f"MLP expects features [N, {self.in_dim}], got a tensor of shape {tuple(x.shape)}")
        return self.net(x)
