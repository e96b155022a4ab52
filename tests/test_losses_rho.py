"""The rho-losses and Sinkhorn-Knopp against slow, obviously-correct references.

Large-scale study, Eq. 1-3 and Sec. 3.2 (symmetric loss over rho clips); the values at
initialisation are from the authors' configs (papers/README.md): MoCo log(K + 1),
SimCLR log(2B - 1), SwAV log(#prototypes).
"""
import math

import pytest
import torch

from vidssl.errors import RhoLossError, SinkhornError
from vidssl.losses import byol_loss, multi_positive_info_nce, multi_positive_nt_xent, swav_loss
from vidssl.methods.sinkhorn import sinkhorn, sinkhorn_log

SHAPES = [(1, 2, 4), (3, 2, 8), (4, 3, 5), (2, 4, 16)]  # (B, rho, D)
TEMPS = [0.07, 0.1, 0.5]


def unit(v):
    return v / v.norm()


# ----------------------------------------------------------------------------- references (loops)


def ref_info_nce(query, keys, queue, t):
    b, rho, _ = query.shape
    total = 0.0
    for v in range(b):
        for i in range(rho):
            q = unit(query[v, i])
            pos = sum(torch.exp(q @ unit(keys[v, j]) / t) for j in range(rho) if j != i)
            neg = sum((torch.exp(q @ unit(n) / t) for n in queue), torch.zeros((), dtype=query.dtype))
            total = total - torch.log(pos / (pos + neg))
    return total / (b * rho)


def ref_nt_xent(z, t):
    """z: [B, rho, D], one process: every clip vs every other clip of the batch."""
    b, rho, _ = z.shape
    clips = [(v, i, unit(z[v, i])) for v in range(b) for i in range(rho)]
    total = 0.0
    for v, i, q in clips:
        pos = sum(torch.exp(q @ k / t) for (w, j, k) in clips if w == v and j != i)
        den = sum(torch.exp(q @ k / t) for (w, j, k) in clips if not (w == v and j == i))
        total = total - torch.log(pos / den)
    return total / len(clips)


def ref_byol(p, z):
    b, rho, _ = p.shape
    total, count = 0.0, 0
    for v in range(b):
        for i in range(rho):
            sub = sum(2 - 2 * unit(p[v, i]) @ unit(z[v, j]) for j in range(rho) if j != i) / (rho - 1)
            total, count = total + sub, count + 1
    return total / count


def ref_swav(scores, codes, t):
    b, rho, k = scores.shape
    total, count = 0.0, 0
    for v in range(b):
        for i in range(rho):
            logp = torch.log_softmax(scores[v, i] / t, dim=0)
            sub = sum(-(codes[v, j] * logp).sum() for j in range(rho) if j != i) / (rho - 1)
            total, count = total + sub, count + 1
    return total / count


def ref_sinkhorn(scores, eps, iters):
    """The plain-domain algorithm of the SwAV code (single process), in float64."""
    q = torch.exp(scores.double() / eps).t()  # [K, B]
    q = q / q.sum()
    k, b = q.shape
    for _ in range(iters):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t()


# ----------------------------------------------------------------------------- MoCo InfoNCE


@pytest.mark.parametrize("b,rho,d", SHAPES)
@pytest.mark.parametrize("t", TEMPS)
def test_info_nce_matches_reference(b, rho, d, t):
    g = torch.Generator().manual_seed(b * 100 + rho * 10 + d)
    query = torch.randn(b, rho, d, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(b, rho, d, generator=g, dtype=torch.float64)
    queue = torch.randn(7, d, generator=g, dtype=torch.float64)
    loss = multi_positive_info_nce(query, keys, queue, t)
    (grad,) = torch.autograd.grad(loss, query)
    q2 = query.detach().clone().requires_grad_(True)
    ref = ref_info_nce(q2, keys, queue, t)
    (grad_ref,) = torch.autograd.grad(ref, q2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)
    torch.testing.assert_close(grad, grad_ref.float().to(grad.dtype), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("queue_size", [1, 16, 65536])
def test_info_nce_equal_logits_is_log_one_plus_queue(queue_size):
    v = torch.ones(4)
    query, keys, queue = v.expand(3, 2, 4), v.expand(3, 2, 4), v.expand(queue_size, 4)
    assert multi_positive_info_nce(query, keys, queue, 0.1).item() == pytest.approx(math.log(1 + queue_size), rel=1e-5)
    # with rho = 3 every query has 2 equal positives: log((2 + K) / 2)
    loss3 = multi_positive_info_nce(v.expand(3, 3, 4), v.expand(3, 3, 4), queue, 0.1)
    assert loss3.item() == pytest.approx(math.log((2 + queue_size) / 2), rel=1e-5)


def test_info_nce_keys_and_queue_get_no_gradient():
    query = torch.randn(2, 3, 4, requires_grad=True)
    keys = torch.randn(2, 3, 4, requires_grad=True)
    queue = torch.randn(5, 4, requires_grad=True)
    multi_positive_info_nce(query, keys, queue).backward()
    assert query.grad is not None and keys.grad is None and queue.grad is None


def test_info_nce_accuracy():
    keys = torch.eye(4)[:2].expand(2, 2, 4).clone()  # video 0 -> e0, video 1 -> e1 (both clips)
    keys[1] = torch.eye(4)[1]
    keys[0] = torch.eye(4)[0]
    queue = torch.eye(4)[2:]
    _, acc = multi_positive_info_nce(keys.clone(), keys, queue, 0.1, return_accuracy=True)
    assert acc.item() == 1.0
    _, acc = multi_positive_info_nce(queue[0].expand(2, 2, 4), keys, queue, 0.1, return_accuracy=True)
    assert acc.item() == 0.0


# ----------------------------------------------------------------------------- SimCLR NT-Xent


@pytest.mark.parametrize("b,rho,d", SHAPES)
@pytest.mark.parametrize("t", TEMPS)
def test_nt_xent_matches_reference(b, rho, d, t):
    g = torch.Generator().manual_seed(b * 100 + rho * 10 + d + 1)
    z = torch.randn(b, rho, d, generator=g, dtype=torch.float64, requires_grad=True)
    loss = multi_positive_nt_xent(z, temperature=t)
    (grad,) = torch.autograd.grad(loss, z)
    z2 = z.detach().clone().requires_grad_(True)
    ref = ref_nt_xent(z2, t)
    (grad_ref,) = torch.autograd.grad(ref, z2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-5)
    torch.testing.assert_close(grad, grad_ref.to(grad.dtype), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("b", [1, 2, 8, 512])
def test_nt_xent_equal_logits_is_log_2b_minus_1(b):
    z = torch.ones(b, 2, 3)
    assert multi_positive_nt_xent(z).item() == pytest.approx(math.log(2 * b - 1), rel=1e-5)


@pytest.mark.parametrize("b,rho,d,world", [(2, 2, 4, 2), (3, 3, 5, 2), (1, 2, 8, 4)])
def test_nt_xent_split_over_processes_averages_to_the_global_loss(b, rho, d, world):
    """What a process computes under DDP (its queries against the all-gathered keys),
    averaged over the processes, is the loss of the whole global batch."""
    z = torch.randn(b * world, rho, d, dtype=torch.float64)
    parts = [multi_positive_nt_xent(z[r * b:(r + 1) * b], z, torch.arange(b) + r * b) for r in range(world)]
    assert torch.stack(parts).mean().item() == pytest.approx(multi_positive_nt_xent(z).item(), rel=1e-6)


# ----------------------------------------------------------------------------- BYOL


@pytest.mark.parametrize("b,rho,d", SHAPES)
def test_byol_matches_reference(b, rho, d):
    g = torch.Generator().manual_seed(b * 100 + rho * 10 + d + 2)
    p = torch.randn(b, rho, d, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(b, rho, d, generator=g, dtype=torch.float64)
    loss = byol_loss(p, z)
    (grad,) = torch.autograd.grad(loss, p)
    p2 = p.detach().clone().requires_grad_(True)
    ref = ref_byol(p2, z)
    (grad_ref,) = torch.autograd.grad(ref, p2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grad, grad_ref.to(grad.dtype), rtol=1e-4, atol=1e-6)


def test_byol_limits_and_no_target_gradient():
    z = torch.randn(3, 1, 6).expand(3, 2, 6).clone().requires_grad_(True)  # both clips of a video agree
    assert byol_loss(z, z).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(z, -z).item() == pytest.approx(4.0, abs=1e-5)
    # a clip is never its own positive: two different clips per video give a loss > 0
    w = torch.randn(3, 2, 6)
    assert byol_loss(w, w).item() > 0.1
    p = torch.randn(3, 2, 6, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


# ----------------------------------------------------------------------------- SwAV


@pytest.mark.parametrize("b,rho,d", SHAPES)
@pytest.mark.parametrize("t", TEMPS)
def test_swav_matches_reference(b, rho, d, t):
    g = torch.Generator().manual_seed(b * 100 + rho * 10 + d + 3)
    scores = torch.randn(b, rho, d, generator=g, dtype=torch.float64, requires_grad=True)
    codes = torch.softmax(torch.randn(b, rho, d, generator=g, dtype=torch.float64), dim=-1)
    loss = swav_loss(scores, codes, t)
    (grad,) = torch.autograd.grad(loss, scores)
    s2 = scores.detach().clone().requires_grad_(True)
    ref = ref_swav(s2, codes, t)
    (grad_ref,) = torch.autograd.grad(ref, s2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grad, grad_ref.to(grad.dtype), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [3, 100, 1000])
def test_swav_uniform_scores_is_log_prototypes(k):
    scores = torch.zeros(4, 2, k)
    codes = sinkhorn(scores[:, 0])  # uniform scores give uniform codes
    torch.testing.assert_close(codes, torch.full((4, k), 1.0 / k))
    assert swav_loss(scores, torch.stack([codes, codes], 1), 0.1).item() == pytest.approx(math.log(k), rel=1e-5)


# ----------------------------------------------------------------------------- Sinkhorn-Knopp


@pytest.mark.parametrize("n,k", [(4, 3), (16, 10), (32, 100), (8, 1000)])
@pytest.mark.parametrize("iters", [1, 3, 10])
def test_sinkhorn_matches_swav_reference(n, k, iters):
    scores = torch.nn.functional.normalize(torch.randn(n, 16), dim=1) @ \
        torch.nn.functional.normalize(torch.randn(k, 16), dim=1).t()  # cosines, as in SwAV
    codes = sinkhorn_log(scores.double(), 0.05, iters)
    torch.testing.assert_close(codes, ref_sinkhorn(scores, 0.05, iters), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(codes.sum(1), torch.ones(n, dtype=torch.float64))  # rows sum to 1 exactly


@pytest.mark.parametrize("n,k", [(8, 4), (30, 10), (64, 16)])
def test_sinkhorn_columns_converge_to_n_over_k(n, k):
    scores = torch.randn(n, k).clamp(-1, 1)
    codes = sinkhorn_log(scores, epsilon=0.5, iterations=500)
    torch.testing.assert_close(codes.sum(1), torch.ones(n), rtol=0, atol=1e-5)
    torch.testing.assert_close(codes.sum(0), torch.full((k,), n / k), rtol=1e-3, atol=1e-3)
    # after 3 iterations (the paper's setting) the columns are already closer to n / k than the softmax's
    soft = torch.softmax(scores / 0.05, dim=1).sum(0)
    three = sinkhorn_log(scores, 0.05, 3).sum(0)
    assert (three - n / k).abs().max() < (soft - n / k).abs().max()


def test_sinkhorn_is_stable_for_large_scores():
    scores = torch.tensor([[50.0, -50.0], [-50.0, 50.0], [60.0, 0.0]])
    codes = sinkhorn(scores, 0.05, 3)
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.sum(1), torch.ones(3))


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_problem():
    with pytest.raises(RhoLossError, match="rho = 1"):
        multi_positive_info_nce(torch.randn(2, 1, 4), torch.randn(2, 1, 4), torch.randn(3, 4))
    with pytest.raises(RhoLossError, match="queue"):
        multi_positive_info_nce(torch.randn(2, 2, 4), torch.randn(2, 2, 4), torch.randn(3, 5))
    with pytest.raises(RhoLossError, match="temperature"):
        multi_positive_nt_xent(torch.randn(2, 2, 4), temperature=0.0)
    with pytest.raises(RhoLossError, match="same shape"):
        byol_loss(torch.randn(2, 2, 4), torch.randn(2, 3, 4))
    with pytest.raises(RhoLossError, match=r"\[B, rho, D\]"):
        swav_loss(torch.randn(2, 4), torch.randn(2, 4))
    with pytest.raises(SinkhornError, match="iterations"):
        sinkhorn_log(torch.randn(3, 4), 0.05, 0)
    assert issubclass(RhoLossError, ValueError) and issubclass(SinkhornError, ValueError)
