"""rho-MoCo, rho-SimCLR, rho-BYOL, rho-SwAV wrappers on a tiny fake backbone, and their
shared pieces: momentum schedule and EMA, the MoCo queue, shuffle-BN, prototype freezing,
and the 2-process DDP behaviour (SimCLR's all-gathered negatives, SwAV's global Sinkhorn).
"""
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import MomentumError, QueueError, RhoInputError
from vidssl.losses import byol_loss, multi_positive_info_nce, multi_positive_nt_xent, swav_loss
from vidssl.methods.base import Progress
from vidssl.methods.momentum import ema_update_, momentum_at, momentum_copy
from vidssl.methods.queue import KeyQueue
from vidssl.methods.sinkhorn import sinkhorn_log
from vidssl.registry import method_class, method_config_class


class TinyBackbone(nn.Module):
    """[N, C, T, H, W] -> [N, feat_dim]; with BN so that train/eval modes matter."""

    def __init__(self, feat_dim=8, bn=True):
        super().__init__()
        self.feat_dim = feat_dim
        self.conv = nn.Conv3d(3, feat_dim, 3, padding=1)
        self.bn = nn.BatchNorm3d(feat_dim) if bn else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))


def small_cfg(name, **kw):
    base = {
        "moco": dict(dim=6, hidden_dim=16, queue_size=32),
        "simclr": dict(dim=6, hidden_dim=16),
        "byol": dict(dim=6, hidden_dim=16, predictor_hidden_dim=16),
        "swav": dict(dim=6, hidden_dim=16, num_prototypes=5),
    }[name]
    base.update(kw)
    return method_config_class(name)(**base)


def build(name, bn=True, **kw):
    torch.manual_seed(0)
    return method_class(name)(small_cfg(name, **kw), TinyBackbone(bn=bn), num_samples=10, num_classes=0)


def batch(b=4, rho=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"clips": (torch.randn(b, rho, 3, 2, 6, 6, generator=g),), "index": torch.arange(b),
            "label": torch.full((b,), -1)}


METHODS = ["moco", "simclr", "byol", "swav"]


# ----------------------------------------------------------------------------- momentum


@pytest.mark.parametrize("m0", [0.994, 0.996, 0.9])
def test_momentum_schedule_against_the_formula(m0):
    k_max = 1000
    for k in (0, k_max // 2, k_max, 123):
        expected = 1 - (1 - m0) * (math.cos(math.pi * k / k_max) + 1) / 2
        assert momentum_at(k / k_max, m0) == pytest.approx(expected, abs=1e-12)
    assert momentum_at(0.0, m0) == pytest.approx(m0)
    assert momentum_at(0.5, m0) == pytest.approx(1 - (1 - m0) / 2)
    assert momentum_at(1.0, m0) == pytest.approx(1.0)
    assert momentum_at(Progress(step=500, steps_per_epoch=100, epochs=10).fraction, m0) == pytest.approx(1 - (1 - m0) / 2)


def test_ema_update_is_the_moving_average_of_parameters_only():
    online, target = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), None
    target = momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online[1].running_mean.fill_(5.0)
    before = [p.clone() for p in target.parameters()]
    ema_update_(target, online, 0.9)
    for old, new, o in zip(before, target.parameters(), online.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * o)
    assert target[1].running_mean.abs().max() == 0  # buffers are the target's own
    with pytest.raises(MomentumError):
        ema_update_(target, nn.Linear(3, 5), 0.9)
    with pytest.raises(MomentumError):
        momentum_at(0.5, 1.5)


@pytest.mark.parametrize("name,m0", [("moco", 0.994), ("byol", 0.996)])
def test_after_step_uses_the_annealed_momentum(name, m0):
    method = build(name)
    method.train()
    method(batch())["loss"].backward()
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(0.5)  # stands in for an optimiser step
    target = method.backbone_m
    before = [p.clone() for p in target.parameters()]
    progress = Progress(epoch=1, step=50, steps_per_epoch=50, epochs=4)  # k / K = 0.25
    method.after_step(progress)
    m = 1 - (1 - m0) * (math.cos(math.pi * 0.25) + 1) / 2
    assert method.momentum == pytest.approx(m)
    for old, new, o in zip(before, target.parameters(), method.backbone.parameters()):
        torch.testing.assert_close(new, m * old + (1 - m) * o)


# ----------------------------------------------------------------------------- queue


def test_queue_enqueue_wraps_around():
    q = KeyQueue(5, 3)
    torch.testing.assert_close(q.queue.norm(dim=1), torch.ones(5))
    a = torch.arange(9.0).view(3, 3)
    q.enqueue(a)
    torch.testing.assert_close(q.queue[:3], a)
    assert int(q.ptr) == 3
    b = 10 + torch.arange(9.0).view(3, 3)
    q.enqueue(b)  # rows 3, 4, then 0
    torch.testing.assert_close(q.queue[3:], b[:2])
    torch.testing.assert_close(q.queue[0], b[2])
    torch.testing.assert_close(q.queue[1:3], a[1:])
    assert int(q.ptr) == 1
    assert set(q.state_dict()) == {"queue", "ptr"}
    with pytest.raises(QueueError, match="cannot enqueue"):
        q.enqueue(torch.zeros(6, 3))
    with pytest.raises(QueueError):
        q.enqueue(torch.zeros(2, 4))


def test_moco_enqueues_all_rho_keys_of_the_momentum_encoder():
    method = build("moco", shuffle_bn=False, queue_size=64)
    method.train()
    x = batch(b=4, rho=3)
    old = method.queue.queue.clone()
    with torch.no_grad():
        expected = F.normalize(method.head_m(method.backbone_m(x["clips"][0].flatten(0, 1))), dim=1)
    method(x)
    assert int(method.queue.ptr) == 12
    torch.testing.assert_close(method.queue.queue[:12], expected)
    torch.testing.assert_close(method.queue.queue[12:], old[12:])
    method.eval()
    method(x)  # evaluation does not touch the queue
    assert int(method.queue.ptr) == 12
    assert {"queue.queue", "queue.ptr"} <= set(method.state_dict())


def test_moco_loss_is_the_info_nce_of_queries_keys_and_the_old_queue():
    method = build("moco", shuffle_bn=False)
    method.train()
    x = batch(b=3, rho=2)
    queue = method.queue.queue.clone()
    out = method(x)
    flat = x["clips"][0].flatten(0, 1)
    with torch.no_grad():
        q = method.head(method.backbone(flat)).view(3, 2, -1)
        k = method.head_m(method.backbone_m(flat)).view(3, 2, -1)
    assert out["loss"].item() == pytest.approx(multi_positive_info_nce(q, k, queue, 0.1).item(), rel=1e-5)


def test_shuffle_bn_groups_are_unshuffled():
    """Without BN, the keys do not depend on how the clips are grouped: the shuffled,
    split forward must return every key at its own row."""
    plain = build("moco", bn=False, shuffle_bn=False)
    shuffled = build("moco", bn=False, shuffle_bn=True, bn_splits=3)
    shuffled.load_state_dict(plain.state_dict())
    plain.train()
    shuffled.train()
    x = (batch(b=5, rho=2)["clips"][0].flatten(0, 1),)  # flattened pathways
    with torch.no_grad():
        torch.testing.assert_close(shuffled._keys(x), plain._keys(x))
    # with BN the groups have their own statistics, so the keys differ
    bn_plain, bn_shuffled = build("moco", shuffle_bn=False), build("moco", shuffle_bn=True, bn_splits=2)
    bn_shuffled.load_state_dict(bn_plain.state_dict())
    with torch.no_grad():
        assert not torch.allclose(bn_shuffled._keys(x), bn_plain._keys(x))


# ----------------------------------------------------------------------------- all four methods


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("rho", [2, 3])
def test_forward_backward_and_targets_get_no_gradient(name, rho):
    method = build(name)
    method.train()
    out = method(batch(b=4, rho=rho))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    # logs stay on the device (the engine reads them once per log_every steps): 0-dim, no graph
    assert all(isinstance(v, float) or (isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad)
               for v in out["logs"].values())
    out["loss"].backward()
    for pname, p in method.named_parameters():
        if pname.startswith(("backbone_m.", "head_m.", "projector_m.")):
            assert not p.requires_grad and p.grad is None, pname
        elif pname.startswith("prototypes."):
            assert p.grad is not None and p.grad.abs().max() == 0  # frozen in epoch 0
        else:
            assert p.grad is not None, pname
    assert any(p.grad.abs().max() > 0 for p in method.backbone.parameters())


@pytest.mark.parametrize("name", METHODS)
def test_rho_one_is_refused_with_the_fix(name):
    method = build(name)
    with pytest.raises(RhoInputError, match="t_max=0"):
        method(batch(rho=1))
    with pytest.raises(RhoInputError, match=r"\[B, V, C, T, H, W\]"):
        method({"clips": (torch.randn(4, 3, 2, 6, 6),)})
    with pytest.raises(RhoInputError, match="tuple of pathway tensors"):
        method({"clips": torch.randn(4, 2, 3, 2, 6, 6)})


@pytest.mark.parametrize("name", ["simclr", "byol", "swav"])
def test_loss_matches_the_loss_function_on_the_embeddings(name):
    method = build(name)
    method.train()
    x = batch(b=4, rho=3, seed=3)
    out = method(x)
    flat = x["clips"][0].flatten(0, 1)
    with torch.no_grad():
        if name == "simclr":
            ref = multi_positive_nt_xent(method.head(method.backbone(flat)).view(4, 3, -1))
        elif name == "byol":
            p = method.predictor(method.projector(method.backbone(flat))).view(4, 3, -1)
            z = method.projector_m(method.backbone_m(flat)).view(4, 3, -1)
            ref = byol_loss(p, z)
        else:
            z = F.normalize(method.head(method.backbone(flat)), dim=1)
            scores = (z @ method.prototypes.weight.t()).view(4, 3, -1)
            codes = torch.stack([sinkhorn_log(scores[:, i], 0.05, 3) for i in range(3)], 1)
            ref = swav_loss(scores, codes, 0.1)
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-5)


def test_swav_prototypes_are_normalised_and_frozen_only_in_the_first_epoch():
    method = build("swav")
    method.train()
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)
    method.progress = Progress(epoch=0, step=0, steps_per_epoch=10, epochs=3)
    method(batch())["loss"].backward()
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(5))
    assert method.prototypes.weight.grad.abs().max() == 0
    method.zero_grad()
    method.progress = Progress(epoch=1, step=10, steps_per_epoch=10, epochs=3)
    method(batch())["loss"].backward()
    assert method.prototypes.weight.grad.abs().max() > 0


# ----------------------------------------------------------------------------- 2 processes (gloo)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_one(name, clips):
    """Loss, backbone gradient and (MoCo) queue of one step of ``name`` without BN anywhere
    (per-process BN statistics would legitimately differ from one big batch)."""
    method = build(name, bn=False, mlp_bn=False, **({"shuffle_bn": True} if name == "moco" else {}))
    method.train()
    out = method({"clips": (clips,)})
    out["loss"].backward()
    grad = torch.cat([p.grad.flatten() for p in method.backbone.parameters()])
    queue = method.queue.queue[:8].clone() if name == "moco" else torch.zeros(0)
    return out["loss"].detach().reshape(1), grad, queue


def _worker(rank, world, port, result):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        clips = batch(b=4, rho=2, seed=5)["clips"][0][rank * 2:(rank + 1) * 2]
        out = {}
        for name in METHODS:
            loss, grad, queue = _run_one(name, clips)
            dist.all_reduce(loss)
            dist.all_reduce(grad)  # DDP averages gradients over processes
            out[name] = ((loss / world).item(), (grad / world).tolist(), queue.tolist())
        if rank == 0:
            result.put(out)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_global_batch():
    """2 processes x 2 videos give the loss, gradient and queue of 1 process x 4 videos:
    SimCLR's negatives are all-gathered with gradient, SwAV's Sinkhorn runs over the
    global batch, MoCo shuffles keys across processes (shuffle-BN) and enqueues the
    keys of both processes in rank order."""
    ctx = mp.get_context("spawn")
    result = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, result)) for r in range(2)]
    for p in procs:
        p.start()
    two = result.get(timeout=180)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    clips = batch(b=4, rho=2, seed=5)["clips"][0]
    for name in METHODS:
        loss1, grad1, queue1 = _run_one(name, clips)
        loss2, grad2, queue2 = two[name]
        assert loss2 == pytest.approx(loss1.item(), rel=1e-5), name
        torch.testing.assert_close(torch.tensor(grad2), grad1, rtol=1e-4, atol=1e-6, msg=name)
        if name == "moco":
            torch.testing.assert_close(torch.tensor(queue2), queue1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
def test_recipes_load_with_paper_and_tiny_settings(name):
    from vidssl.config import load_config

    paper = load_config(f"{name}_slow_r50")
    assert paper.model.backbone == "slow_r50" and paper.data.batch_size == 512 and paper.train.epochs == 200
    assert paper.optim.lr == (0.4 if name == "moco" else 4.8)
    assert paper.optim.weight_decay == (1e-4 if name == "moco" else 1e-6)
    assert paper.optim.name == ("sgd" if name == "moco" else "lars")
    assert paper.method["name"] == name and paper.data.views == 2
    tiny = load_config(f"{name}_tiny", ["data.views=3"])
    assert tiny.model.backbone == "r3d18" and tiny.model.width == 16 and tiny.data.views == 3
