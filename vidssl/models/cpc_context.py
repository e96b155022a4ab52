"""Autoregressive context models of video CPC: ``c_t = a(h_1, ..., h_t)``.

CPC paper Sec. 3.1, Fig. 2 and Table 3. Every model maps the encoder's feature maps
``h [B, D, T, H, W]`` (segments along T) to contexts ``c [B, D, T, H', W']`` such that
``c_t`` depends on ``h_1 .. h_t`` only:

- ``masked_conv3d`` (the paper's main model, Fig. 2): 3 layers of temporally masked
  3D convolutions (kernel 3 x 3 x 3; the time axis is padded on the past side only, so
  a layer's output at t reads t-2 .. t) separated by BN and ReLU.
- ``conv2plus1d`` (Table 3 "Conv(2+1)D"): each layer a 3 x 3 spatial convolution, BN,
  ReLU, then a masked temporal convolution of length 3.
- ``convlstm`` (Table 3 "ConvLSTM"): a convolutional LSTM (3 x 3 gates) run over t.
- ``lstm`` (Table 3 "LSTM"): an LSTM on the spatially pooled ``h_t``; ``H' = W' = 1``.

BN here normalises with statistics over the batch and space of each time step
separately (:class:`CausalBatchNorm`), so that even in training mode no statistic
of a later segment reaches ``c_t`` (a BatchNorm3d would mix all T steps of the batch
into every output); the running statistics are shared across time.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import BackboneError


class CausalBatchNorm(nn.Module):
    """BatchNorm over ``[B, D, T, H, W]`` with batch statistics per time step (over B, H, W).

    Deliberately not an ``nn.BatchNorm3d`` subclass, so that SyncBatchNorm conversion
    leaves it alone (it would pool the statistics over time)."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1, 1)
        if not self.training:
            mean, var = self.running_mean.view(shape), self.running_var.view(shape)
        else:
            dims = (0, 3, 4)
            mean = x.mean(dim=dims, keepdim=True)  # [1, D, T, 1, 1]
            var = x.var(dim=dims, unbiased=False, keepdim=True)
            with torch.no_grad():
                n = x.shape[0] * x.shape[3] * x.shape[4]
                unbiased = var.mean(2).flatten() * (n / max(1, n - 1))
                self.running_mean.lerp_(mean.mean(2).flatten(), self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class MaskedConv3d(nn.Conv3d):
    """A 3D convolution whose output at time t reads inputs t - (k_t - 1) .. t only
    (zero padding before the first step, none after the last)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int]):
        kt, kh, kw = kernel
        super().__init__(cin, cout, kernel, padding=(0, kh // 2, kw // 2), bias=False)
        self.past = kt - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (0, 0, 0, 0, self.past, 0)))


def _stack(layers: list[nn.Module], dim: int) -> nn.Sequential:
    """layers separated by BN and ReLU (none after the last)."""
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if i < len(layers) - 1:
            out += [CausalBatchNorm(dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*out)


class MaskedConv3dContext(nn.Module):
    """Fig. 2: ``layers`` temporally masked 3 x 3 x 3 convolutions separated by BN, ReLU."""

    def __init__(self, dim: int, layers: int = 3, kernel: int = 3):
        super().__init__()
        self.net = _stack([MaskedConv3d(dim, dim, (kernel, 3, 3)) for _ in range(layers)], dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class Conv2plus1dContext(nn.Module):
    """Table 3 Conv(2+1)D: per layer a 1 x 3 x 3 convolution, BN, ReLU, a masked 3 x 1 x 1 one."""

    def __init__(self, dim: int, layers: int = 3, kernel: int = 3):
        super().__init__()
        convs: list[nn.Module] = []
        for _ in range(layers):
            convs.append(nn.Sequential(nn.Conv3d(dim, dim, (1, 3, 3), padding=(0, 1, 1), bias=False),
                                       CausalBatchNorm(dim), nn.ReLU(inplace=True),
                                       MaskedConv3d(dim, dim, (kernel, 1, 1))))
        self.net = _stack(convs, dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ConvLSTMContext(nn.Module):
    """Table 3 ConvLSTM: i, f, o, g = conv3x3([h_t ; s_{t-1}]); c_t is the hidden state s_t."""

    def __init__(self, dim: int, layers: int = 1, kernel: int = 3):
        super().__init__()
        self.gates = nn.Conv2d(2 * dim, 4 * dim, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, d, t, hh, ww = h.shape
        s = h.new_zeros(b, d, hh, ww)
        cell = h.new_zeros(b, d, hh, ww)
        out = []
        for step in range(t):
            i, f, o, g = self.gates(torch.cat([h[:, :, step], s], 1)).chunk(4, 1)
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            s = torch.sigmoid(o) * torch.tanh(cell)
            out.append(s)
        return torch.stack(out, 2)


class LSTMContext(nn.Module):
    """Table 3 LSTM: an LSTM over the spatially pooled ``h_t``; output ``[B, D, T, 1, 1]``."""

    def __init__(self, dim: int, layers: int = 1, kernel: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, batch_first=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        seq = h.mean(dim=(3, 4)).transpose(1, 2)  # [B, T, D]
        out, _ = self.lstm(seq)
        return out.transpose(1, 2)[..., None, None]


CONTEXT_MODELS = {
    "masked_conv3d": MaskedConv3dContext,
    "conv2plus1d": Conv2plus1dContext,
    "convlstm": ConvLSTMContext,
    "lstm": LSTMContext,
}


def build_context(name: str, dim: int, layers: int = 3) -> nn.Module:
    """Context model ``name`` over ``dim``-channel maps (``layers``: convolution layers of the
    convolutional models, 3 in the paper; LSTM layers of ``lstm``; ``convlstm`` has one cell)."""
    if name not in CONTEXT_MODELS:
        raise BackboneError(f"unknown context model {name!r} (allowed: {', '.join(CONTEXT_MODELS)})")
    if layers < 1:
        raise BackboneError(f"context model layers must be >= 1 (got {layers})")
    return CONTEXT_MODELS[name](dim, layers=layers)
