"""Optimisers and per-iteration learning-rate schedules.

- ``sgd``: ``torch.optim.SGD`` (optionally Nesterov), weight decay on every parameter
  (MoCo; the supervised baselines).
- ``lars``: :class:`LARS` with trust coefficient 0.001 (You et al. 2017); biases and
  BN parameters (every parameter with ``ndim <= 1``) get neither the adaptation nor
  weight decay — SimCLR, BYOL and SwAV in the large-scale study (App. B.1).
- ``adam`` (L2 on every parameter) and ``adamw`` (decoupled decay, 1-D parameters
  excluded as in MAE).

Schedules are computed per iteration from the total number of iterations
(:func:`lr_at`): the half-period cosine of App. B.1,
``lr = eta * 0.5 * (cos(pi n / n_max) + 1)`` (floored at ``min_lr``), a linear warm-up
from 0 to the schedule's value at the end of ``warmup_epochs``, step decay by
``gamma`` at ``milestones`` (epochs), or a constant.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from vidssl.config import OptimConfig
from vidssl.errors import ConfigError


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling.

    For a parameter w with gradient g (``ndim > 1``)::

        local = trust * ||w|| / (||g|| + wd * ||w||)     (1 when ||w|| or ||g|| is 0)
        buf   = momentum * buf + local * (g + wd * w)
        w    -= lr * buf

    the LARC formulation used by PySlowFast (the large-scale study's code base) and
    apex. Parameters with ``ndim <= 1`` (biases, BN scales and shifts) take plain
    momentum SGD: ``buf = momentum * buf + g``, no weight decay — excluded "for bias
    and BN parameters" (App. B.1, following BYOL).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust: float = 0.001, eps: float = 1e-8, exclude_1d: bool = True):
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust <= 0:
            raise ValueError(f"LARS: bad hyper-parameters lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}, trust={trust} (lr, momentum, wd >= 0; trust > 0)")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust=trust, eps=eps,
                        exclude_1d=exclude_1d)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom, wd, trust = group["lr"], group["momentum"], group["weight_decay"], group["trust"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not (group["exclude_1d"] and p.ndim <= 1):
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(g)
                    local = trust * w_norm / (g_norm + wd * w_norm + group["eps"])
                    local = torch.where((w_norm > 0) & (g_norm > 0), local, torch.ones_like(local))
                    g = (g + wd * p) * local
                state = self.state[p]
                if mom > 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.detach().clone()
                    else:
                        buf.mul_(mom).add_(g)
                    g = buf
                p.add_(g, alpha=-lr)
        return loss


def _split_decay(model: nn.Module) -> tuple[list, list]:
    """Trainable parameters with ndim > 1 (weights) and ndim <= 1 (biases, norms)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return decay, no_decay


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.name`` over the trainable parameters of ``model``.

    The learning rate set here is ``cfg.lr``; the engine overwrites it every
    iteration from :func:`lr_at`.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    if cfg.lr < 0 or cfg.weight_decay < 0:
        raise ConfigError(f"bad value for 'optim.lr' / 'optim.weight_decay': {cfg.lr} / {cfg.weight_decay} (>= 0)")
    if cfg.name == "sgd":
        if cfg.nesterov and cfg.momentum <= 0:
            raise ConfigError("'optim.nesterov' needs 'optim.momentum' > 0")
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "lars":
        if cfg.nesterov:
            raise ConfigError("'optim.nesterov' is not supported by LARS (use optim.name=sgd)")
        return LARS(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, trust=cfg.lars_trust)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        decay, no_decay = _split_decay(model)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    raise ConfigError(f"bad value for 'optim.name': {cfg.name!r} (allowed: sgd, lars, adam, adamw)")


def cosine_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """Half-period cosine from ``start`` (step 0) to ``end`` (step ``total_steps``):
    ``end + (start - end) * 0.5 * (cos(pi * step / total_steps) + 1)``.

    The learning rate (App. B.1) and BYOL/MoCo momentum annealing
    (``m = 1 - (1 - m0) (cos(pi k / K) + 1) / 2`` = ``cosine_schedule(k, K, m0, 1)``).
    """
    if total_steps <= 0:
        raise ValueError(f"cosine_schedule: total_steps must be > 0 (got {total_steps})")
    t = min(max(step, 0), total_steps) / total_steps
    return end + (start - end) * 0.5 * (math.cos(math.pi * t) + 1.0)


def _main_schedule(step: int, total_steps: int, steps_per_epoch: int, cfg: OptimConfig) -> float:
    if cfg.schedule == "cosine":
        return cosine_schedule(step, total_steps, cfg.lr, cfg.min_lr)
    if cfg.schedule == "step":
        drops = sum(1 for m in cfg.milestones if step >= round(m * steps_per_epoch))
        return cfg.lr * cfg.gamma ** drops
    if cfg.schedule in ("constant", "plateau"):  # plateau: the engine scales it after validation
        return cfg.lr
    raise ConfigError(f"bad value for 'optim.schedule': {cfg.schedule!r} (allowed: cosine, step, constant, plateau)")


def lr_at(step: int, total_steps: int, steps_per_epoch: int, cfg: OptimConfig) -> float:
    """Learning rate of iteration ``step`` (0-based) of a run of ``total_steps``.

    During the first ``warmup_epochs * steps_per_epoch`` iterations the rate rises
    linearly from 0 to the schedule's value at the end of the warm-up (Goyal et al.;
    PySlowFast); afterwards it follows the schedule, which is defined over the whole
    run (the cosine's ``n_max`` is ``total_steps``, App. B.1).
    """
    if total_steps <= 0 or steps_per_epoch <= 0:
        raise ValueError(f"lr_at: total_steps and steps_per_epoch must be > 0 (got {total_steps}, {steps_per_epoch})")
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return _main_schedule(warmup, total_steps, steps_per_epoch, cfg) * step / warmup
    return _main_schedule(step, total_steps, steps_per_epoch, cfg)
