"""Optimisers and schedules against hand-written references."""
import math

import pytest
import torch
import torch.nn as nn

from vidssl.config import OptimConfig
from vidssl.engine.optim import LARS, build_optimizer, cosine_schedule, lr_at
from vidssl.errors import ConfigError


def _lars_reference(params, grads, bufs, lr, mom, wd, trust):
    """One LARS step written out per parameter (LARC / PySlowFast formulation)."""
    out, new_bufs = [], []
    for w, g, buf in zip(params, grads, bufs):
        if w.ndim <= 1:  # biases and BN: plain momentum SGD, no weight decay
            d = g.clone()
        else:
            wn, gn = w.norm().item(), g.norm().item()
            local = trust * wn / (gn + wd * wn + 1e-8) if wn > 0 and gn > 0 else 1.0
            d = (g + wd * w) * local
        buf = d if buf is None else mom * buf + d
        new_bufs.append(buf)
        out.append(w - lr * buf)
    return out, new_bufs


@pytest.mark.parametrize("shapes", [[(4, 3), (4,)], [(8, 2, 3, 3, 3), (8,), (8,), (5, 8)], [(1, 1), (3,)]])
@pytest.mark.parametrize("wd", [0.0, 1e-4, 0.1])
def test_lars_matches_reference(shapes, wd):
    gen = torch.Generator().manual_seed(len(shapes))
    params = [nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]
    ref = [p.detach().clone() for p in params]
    bufs = [None] * len(params)
    opt = LARS(params, lr=0.7, momentum=0.9, weight_decay=wd, trust=0.001)
    for _ in range(3):
        grads = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        ref, bufs = _lars_reference(ref, grads, bufs, 0.7, 0.9, wd, 0.001)
        for p, r in zip(params, ref):
            torch.testing.assert_close(p.detach(), r, rtol=1e-12, atol=1e-12)


def test_lars_excluded_params_are_plain_sgd_and_zero_weights_unscaled():
    bias = nn.Parameter(torch.tensor([1.0, -2.0]))
    zero = nn.Parameter(torch.zeros(2, 2))  # ||w|| = 0: the local rate is 1
    opt = LARS([bias, zero], lr=0.5, momentum=0.0, weight_decay=0.5, trust=0.001)
    bias.grad = torch.tensor([0.2, 0.4])
    zero.grad = torch.ones(2, 2)
    opt.step()
    torch.testing.assert_close(bias.detach(), torch.tensor([0.9, -2.2]))  # no decay, no adaptation
    torch.testing.assert_close(zero.detach(), torch.full((2, 2), -0.5))


def test_lars_adaptive_rate_scales_the_step():
    w = nn.Parameter(torch.full((2, 2), 3.0))  # ||w|| = 6
    w.grad = torch.full((2, 2), 0.5)  # ||g|| = 1
    LARS([w], lr=1.0, momentum=0.0, weight_decay=0.0, trust=0.01).step()
    torch.testing.assert_close(w.detach(), torch.full((2, 2), 3.0 - 0.06 * 0.5), rtol=1e-6, atol=1e-6)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_equals_torch_sgd(nesterov):
    cfg = OptimConfig(name="sgd", lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    a, b = _model(), _model()
    opt_a = build_optimizer(a, cfg)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    for _ in range(4):
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_build_optimizer_kinds_and_errors():
    m = _model()
    assert isinstance(build_optimizer(m, OptimConfig(name="lars")), LARS)
    assert isinstance(build_optimizer(m, OptimConfig(name="adam")), torch.optim.Adam)
    adamw = build_optimizer(m, OptimConfig(name="adamw", weight_decay=0.05))
    decays = sorted((g["weight_decay"], sum(p.numel() for p in g["params"])) for g in adamw.param_groups)
    assert decays == [(0.0, 4 + 4 + 4 + 3), (0.05, 20 + 12)]  # biases and BN excluded
    with pytest.raises(ConfigError, match="nesterov"):
        build_optimizer(m, OptimConfig(name="sgd", nesterov=True, momentum=0.0))
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable"):
        build_optimizer(frozen, OptimConfig())


def test_cosine_schedule_points():
    assert cosine_schedule(0, 100, 1.0, 0.0) == pytest.approx(1.0)
    assert cosine_schedule(50, 100, 1.0, 0.0) == pytest.approx(0.5)
    assert cosine_schedule(100, 100, 1.0, 0.0) == pytest.approx(0.0)
    assert cosine_schedule(25, 100, 0.996, 1.0) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    with pytest.raises(ValueError):
        cosine_schedule(0, 0, 1.0, 0.0)


def test_lr_cosine_with_warmup_at_known_points():
    cfg = OptimConfig(lr=0.8, schedule="cosine", warmup_epochs=2, min_lr=0.0)
    spe, total = 10, 100  # warm-up = 20 steps
    at20 = 0.8 * 0.5 * (math.cos(math.pi * 20 / 100) + 1)
    assert lr_at(0, total, spe, cfg) == 0.0
    assert lr_at(10, total, spe, cfg) == pytest.approx(at20 / 2)  # linear, halfway
    assert lr_at(20, total, spe, cfg) == pytest.approx(at20)  # joins the cosine
    assert lr_at(50, total, spe, cfg) == pytest.approx(0.4)  # n / n_max = 1/2
    assert lr_at(100, total, spe, cfg) == pytest.approx(0.0)
    floored = OptimConfig(lr=1.0, schedule="cosine", min_lr=0.1)
    assert lr_at(0, total, spe, floored) == pytest.approx(1.0)
    assert lr_at(100, total, spe, floored) == pytest.approx(0.1)
    assert lr_at(50, total, spe, floored) == pytest.approx(0.55)


def test_lr_step_and_constant():
    cfg = OptimConfig(lr=0.1, schedule="step", milestones=[3, 4.5], gamma=0.1)
    spe = 10
    assert lr_at(29, 60, spe, cfg) == pytest.approx(0.1)
    assert lr_at(30, 60, spe, cfg) == pytest.approx(0.01)
    assert lr_at(44, 60, spe, cfg) == pytest.approx(0.01)
    assert lr_at(45, 60, spe, cfg) == pytest.approx(0.001)
    warm = OptimConfig(lr=0.1, schedule="step", milestones=[3], warmup_epochs=1)
    assert lr_at(5, 60, spe, warm) == pytest.approx(0.05)
    assert lr_at(10, 60, spe, warm) == pytest.approx(0.1)
    const = OptimConfig(lr=0.3, schedule="constant")
    assert [lr_at(s, 50, spe, const) for s in (0, 25, 49)] == [0.3, 0.3, 0.3]
