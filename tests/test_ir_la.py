"""Video IR (softmax, NCE) and Video LA: losses against slow references, and the methods."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.config import load_config
from vidssl.errors import ConfigError, LALossError
from vidssl.losses.ir_nce import NCEIRLoss, nce_ir_loss, softmax_ir_loss
from vidssl.losses.local_aggregation import local_aggregation_loss
from vidssl.methods.base import Progress
from vidssl.registry import method_class, method_config_class


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


# ----------------------------------------------------------------------------- IR: softmax


def slow_softmax_ir(v, bank, index, tau):
    total = 0.0
    for b in range(len(v)):
        scores = [float(v[b] @ bank[j]) / tau for j in range(len(bank))]
        denom = sum(math.exp(s) for s in scores)
        total += -math.log(math.exp(scores[int(index[b])]) / denom)
    return total / len(v)


@pytest.mark.parametrize("b,n,d,tau", [(4, 10, 8, 0.07), (7, 33, 16, 0.1), (1, 5, 3, 0.5)])
def test_softmax_ir_matches_reference(b, n, d, tau):
    v, bank = unit(b, d, seed=1), unit(n, d, seed=2)
    index = torch.randint(0, n, (b,), generator=torch.Generator().manual_seed(b))
    got = softmax_ir_loss(v.float(), bank.float(), index, tau)
    assert got.item() == pytest.approx(slow_softmax_ir(v, bank, index, tau), rel=1e-4)


# ----------------------------------------------------------------------------- IR: NCE


def slow_nce(v, bank, index, noise_index, tau, z):
    """Wu et al. 2018: L = -log(P/(P + m/N)) - sum_n log((m/N)/(P_n + m/N)), P = exp(s/tau)/Z."""
    n, m = len(bank), noise_index.shape[1]
    pn = m / n
    total = 0.0
    for b in range(len(v)):
        p = math.exp(float(v[b] @ bank[int(index[b])]) / tau) / z
        total += -math.log(p / (p + pn))
        for j in noise_index[b].tolist():
            q = math.exp(float(v[b] @ bank[j]) / tau) / z
            total += -math.log(pn / (q + pn))
    return total / len(v)


@pytest.mark.parametrize("b,n,d,m,tau", [(3, 50, 8, 16, 0.07), (5, 200, 16, 64, 0.07), (2, 20, 4, 40, 0.2)])
def test_nce_matches_reference_and_estimates_z_once(b, n, d, m, tau):
    v, bank = unit(b, d, seed=3).float(), unit(n, d, seed=4).float()
    index = torch.arange(b)
    noise = torch.randint(0, n, (b, m), generator=torch.Generator().manual_seed(0))
    loss_fn = NCEIRLoss(n, m, tau)
    assert torch.isnan(loss_fn.log_z)
    got = loss_fn(v, bank, index, noise)
    # Z = N * mean over the batch's noise samples of exp(s / tau), from the first batch
    z_ref = n * np.mean([math.exp(float(v[i] @ bank[j]) / tau) for i in range(b) for j in noise[i].tolist()])
    assert loss_fn.z == pytest.approx(z_ref, rel=1e-5)
    assert got.item() == pytest.approx(slow_nce(v.double(), bank.double(), index, noise, tau, z_ref), rel=1e-4)
    # a second batch reuses Z
    v2 = unit(b, d, seed=5).float()
    got2 = loss_fn(v2, bank, index, noise)
    assert loss_fn.z == pytest.approx(z_ref, rel=1e-5)
    assert got2.item() == pytest.approx(slow_nce(v2.double(), bank.double(), index, noise, tau, z_ref), rel=1e-4)
    # the functional form agrees
    pos = (v2 * bank[index]).sum(1)
    neg = torch.einsum("bd,bmd->bm", v2, bank[noise])
    assert nce_ir_loss(pos, neg, n, loss_fn.log_z, tau).item() == pytest.approx(got2.item(), rel=1e-6)
    # a loaded state keeps its Z; a loaded NaN (a run that had not estimated it) is estimated again
    fresh = NCEIRLoss(n, m, tau)
    fresh.load_state_dict(loss_fn.state_dict())
    fresh(v2, bank, index, noise)
    assert fresh.z == pytest.approx(z_ref, rel=1e-5)
    loss_fn.load_state_dict(NCEIRLoss(n, m, tau).state_dict())
    loss_fn(v, bank, index, noise)
    assert loss_fn.z == pytest.approx(z_ref, rel=1e-5)


def test_nce_normalising_constant_for_random_128d_bank():
    # authors' code: Z is about 2.2456 N for 128-d unit vectors at tau 0.07
    n = 4000
    loss_fn = NCEIRLoss(n, 4096, 0.07)
    bank, v = unit(n, 128, seed=6).float(), unit(64, 128, seed=7).float()
    loss_fn(v, bank, torch.arange(64), generator=torch.Generator().manual_seed(0))
    assert 2.1 < loss_fn.z / n < 2.4


def test_nce_gradient_reaches_embeddings_only():
    bank = unit(30, 8, seed=8).float()
    v = unit(4, 8, seed=9).float().requires_grad_()
    NCEIRLoss(30, 10)(v, bank, torch.arange(4), generator=torch.Generator().manual_seed(1)).backward()
    assert v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- LA loss


def slow_la(v, bank, index, labels, k, tau, eps=0.0):
    """Sets, loops: B = top-k of v.bank; C = same cluster in any clustering, inside B."""
    total = 0.0
    for b in range(len(v)):
        scores = [float(v[b] @ bank[j]) for j in range(len(bank))]
        back = sorted(range(len(bank)), key=lambda j: -scores[j])[:k]
        i = int(index[b])
        close = [j for j in back if any(labels[c][j] == labels[c][i] for c in range(len(labels)))]
        num = sum(math.exp(scores[j] / tau) for j in close)
        den = sum(math.exp(scores[j] / tau) for j in back)
        total += -math.log(num / den + eps)
    return total / len(v)


@pytest.mark.parametrize("b,n,d,m,kc,k", [(4, 40, 8, 3, 5, 10), (6, 100, 16, 2, 12, 30), (3, 25, 4, 1, 3, 25),
                                          (2, 12, 6, 3, 4, 50)])
def test_la_matches_reference(b, n, d, m, kc, k):
    g = torch.Generator().manual_seed(n)
    bank = unit(n, d, seed=10).float()
    index = torch.randperm(n, generator=g)[:b]
    # embeddings near their own bank entries, so the video itself is a background neighbour
    v = F.normalize(bank[index] + 0.3 * unit(b, d, seed=11).float(), dim=1)
    labels = torch.randint(0, kc, (m, n), generator=g)
    got, stats = local_aggregation_loss(v, bank, index, labels, background=k, temperature=0.07, eps=0.0)
    ref = slow_la(v.double(), bank.double(), index, labels.tolist(), min(k, n), 0.07)
    assert got.item() == pytest.approx(ref, rel=1e-4)
    assert stats["background"] == min(k, n) and stats["close"] >= 1
    got_eps, _ = local_aggregation_loss(v, bank, index, labels, background=k, temperature=0.07, eps=1e-3)
    assert got_eps.item() == pytest.approx(slow_la(v.double(), bank.double(), index, labels.tolist(), min(k, n),
                                                   0.07, eps=1e-3), rel=1e-4)


def test_la_gradient_matches_reference_gradient():
    n, d, k = 30, 8, 12
    bank = unit(n, d, seed=12).float()
    index = torch.tensor([0, 5, 9])
    labels = torch.randint(0, 4, (2, n), generator=torch.Generator().manual_seed(2))
    v0 = F.normalize(bank[index] + 0.2 * unit(3, d, seed=13).float(), dim=1)
    v = v0.clone().requires_grad_()
    local_aggregation_loss(v, bank, index, labels, background=k, eps=0.0)[0].backward()
    # reference: same top-k selection, written with explicit sums
    w = v0.clone().requires_grad_()
    s = w @ bank.T
    total = 0
    for b in range(3):
        back = s[b].detach().topk(k).indices
        close = [j for j in back.tolist() if (labels[:, j] == labels[:, index[b]]).any()]
        total = total - torch.log(torch.exp(s[b, close] / 0.07).sum() / torch.exp(s[b, back] / 0.07).sum())
    (total / 3).backward()
    torch.testing.assert_close(v.grad, w.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [2, 7, 64, 4096])
def test_la_sanity_values(k):
    # k background neighbours with equal similarity: one close -> log k, all close -> 0
    d = 8
    bank = unit(1, d, seed=14).float().repeat(k, 1)
    v = bank[:1].clone()
    one_close = torch.ones(1, k, dtype=torch.long)
    one_close[0, 0] = 0  # only video 0 itself is in its cluster
    loss, stats = local_aggregation_loss(v, bank, torch.tensor([0]), one_close, background=k, eps=0.0)
    assert loss.item() == pytest.approx(math.log(k), rel=1e-5) and stats["close"] == 1
    loss_guarded, _ = local_aggregation_loss(v, bank, torch.tensor([0]), one_close, background=k)
    assert loss_guarded.item() == pytest.approx(math.log(k), abs=1e-3)  # the 1e-7 guard barely moves it
    all_close = torch.zeros(3, k, dtype=torch.long)
    loss, stats = local_aggregation_loss(v, bank, torch.tensor([0]), all_close, background=k, eps=0.0)
    assert abs(loss.item()) < 1e-5 and stats["close"] == k


def test_la_without_close_neighbour_is_bounded_and_finite():
    bank = unit(10, 4, seed=15).float()
    v = (-bank[:1]).requires_grad_()  # video 0's own entry is the farthest: outside the top-3
    labels = torch.arange(10).unsqueeze(0)  # every video alone in its cluster
    loss, stats = local_aggregation_loss(v, bank, torch.tensor([0]), labels, background=3)
    assert stats["close"] == 0 and loss.item() == pytest.approx(-math.log(1e-7), rel=1e-4)
    loss.backward()
    assert torch.isfinite(v.grad).all()
    plain, _ = local_aggregation_loss(v.detach(), bank, torch.tensor([0]), labels, background=3, eps=0.0)
    assert math.isinf(plain.item())


def test_la_bad_shapes():
    bank = unit(10, 4).float()
    with pytest.raises(LALossError, match="cluster_labels"):
        local_aggregation_loss(bank[:2], bank, torch.tensor([0, 1]), torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(LALossError, match="index"):
        local_aggregation_loss(bank[:2], bank, torch.tensor([0]), torch.zeros(2, 10, dtype=torch.long))


# ----------------------------------------------------------------------------- methods


class FakeBackbone(nn.Module):
    """[N, C, T, H, W] -> [N, feat_dim]: global average pool and a linear layer."""

    def __init__(self, channels=3, feat_dim=12):
        super().__init__()
        self.feat_dim = feat_dim
        self.fc = nn.Linear(channels, feat_dim)

    def forward(self, x):
        return self.fc(x.mean((2, 3, 4)))


def fake_batch(index, views=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(index)
    return {"clips": (torch.randn(b, views, 3, 2, 4, 4, generator=g),), "index": torch.tensor(index),
            "label": torch.full((b,), -1)}


def make(module, n=20, **kw):
    torch.manual_seed(0)
    return method_class(module)(method_config_class(module)(**kw), FakeBackbone(), num_samples=n, num_classes=0)


def test_ir_method_loss_embedding_and_bank_update():
    method = make("ir", n=20)
    assert method.ir_mode == "softmax"  # N <= 4096: the exact softmax
    batch = fake_batch([3, 7, 11])
    old = method.memory_bank.bank.clone()
    out = method(batch)
    x = batch["clips"][0].flatten(0, 1)
    v = F.normalize(method.embed(method.backbone(x)), dim=1)
    assert out["loss"].item() == pytest.approx(slow_softmax_ir(v.double().detach(), old.double(),
                                                               torch.tensor([3, 7, 11]), 0.07), rel=1e-4)
    out["loss"].backward()
    assert method.backbone.fc.weight.grad.abs().sum() > 0 and method.embed.weight.grad.abs().sum() > 0
    assert not any(p is method.memory_bank.bank for p in method.parameters())  # the bank is not optimised
    method.after_step(Progress())
    expected = old.clone()
    for i, row in zip([3, 7, 11], v.detach()):
        expected[i] = F.normalize(0.5 * old[i] + 0.5 * row, dim=0)
    torch.testing.assert_close(method.memory_bank.bank, expected)


def test_ir_method_nce_and_views():
    method = make("ir", n=5000)
    assert method.ir_mode == "nce" and make("ir", n=20, loss="nce").ir_mode == "nce"
    out = method(fake_batch([1, 2], views=3))
    assert math.isfinite(out["loss"].item()) and math.isfinite(out["logs"]["log_z"])
    index, v = method._pending
    assert index.tolist() == [1, 1, 1, 2, 2, 2] and v.shape == (6, 128)
    method.eval()
    method._pending = None
    method(fake_batch([1, 2]))
    assert method._pending is None  # no bank update from evaluation passes


def test_la_method_clusters_every_epoch_and_keeps_labels_in_state():
    method = make("la", n=40, num_clusters=4, background_neighbors=16, kmeans_backend="torch")
    keys = method.state_dict().keys()
    assert {"memory_bank.bank", "cluster_labels", "clustered_epoch", "ir_loss.log_z"} <= set(keys)
    assert method.cluster_labels.shape == (3, 40)
    method.on_epoch_start(Progress(epoch=0))
    first = method.cluster_labels.clone()
    assert int(method.clustered_epoch) == 0 and first.max() < 4 and len(first.unique()) == 4
    method.memory_bank.bank.copy_(F.normalize(torch.randn(40, 128), dim=1))
    method.on_epoch_start(Progress(epoch=0))  # a resume inside epoch 0 keeps epoch 0's clusters
    assert torch.equal(method.cluster_labels, first)
    method.on_epoch_start(Progress(epoch=1))
    assert int(method.clustered_epoch) == 1 and not torch.equal(method.cluster_labels, first)
    batch = fake_batch([0, 5, 9, 33])
    out = method(batch)
    v = F.normalize(method.embed(method.backbone(batch["clips"][0].flatten(0, 1))), dim=1).detach()
    ref = slow_la(v.double(), method.memory_bank.bank.double(), torch.tensor([0, 5, 9, 33]),
                  method.cluster_labels.tolist(), 16, 0.07, eps=1e-7)
    assert out["loss"].item() == pytest.approx(ref, rel=1e-4) and out["logs"]["phase_ir"] == 0.0
    out["loss"].backward()
    assert method.backbone.fc.weight.grad.abs().sum() > 0


def test_la_ir_warmup_then_la():
    method = make("la", n=30, num_clusters=3, ir_warmup_epochs=2, kmeans_backend="torch")
    method.on_epoch_start(Progress(epoch=1))
    assert int(method.clustered_epoch) == -1  # no clustering during the IR warm-up
    method.progress = Progress(epoch=1)
    assert method(fake_batch([0, 1]))["logs"]["phase_ir"] == 1.0
    method.on_epoch_start(Progress(epoch=2))
    method.progress = Progress(epoch=2)
    assert int(method.clustered_epoch) == 2 and method(fake_batch([0, 1]))["logs"]["phase_ir"] == 0.0


def test_la_clusters_from_a_features_file(tmp_path):
    n = 24
    truth = np.repeat(np.arange(3), 8)
    feats = np.eye(3, dtype=np.float32)[truth] * 5 + 0.01 * np.random.default_rng(0).normal(size=(n, 3))
    np.save(tmp_path / "idt.npy", feats.astype(np.float32))
    method = make("la", n=n, num_clusters=3, num_clusterings=2, cluster_source="file",
                  cluster_features=str(tmp_path / "idt.npy"))
    method.on_epoch_start(Progress(epoch=0))
    from vidssl.methods.clustering import cluster_metrics

    for lab in method.cluster_labels.numpy():
        assert cluster_metrics(lab, truth)["nmi"] == pytest.approx(1.0)
    np.save(tmp_path / "short.npy", feats[:10])
    short = make("la", n=n, num_clusters=3, cluster_source="file", cluster_features=str(tmp_path / "short.npy"))
    with pytest.raises(ConfigError, match="10 rows"):
        short.on_epoch_start(Progress(epoch=0))


def test_ir_checkpoint_keys_carry_over_to_la():
    ir_state = make("ir", n=25).state_dict()
    la_state = make("la", n=25, num_clusters=3).state_dict()
    for key, value in ir_state.items():
        assert key in la_state and la_state[key].shape == value.shape, key


def test_la_config_validation():
    with pytest.raises(ConfigError, match="cluster_source"):
        load_config(None, ["method.name=la", "method.cluster_source=bogus"])
    with pytest.raises(ConfigError, match="cluster_features"):
        load_config(None, ["method.name=la", "method.cluster_source=file"])
    with pytest.raises(ConfigError, match="temperature"):
        load_config(None, ["method.name=ir", "method.temperature=0"])
    cfg = load_config(None, ["method.name=la", "method.num_clusters=50"])
    assert cfg.method["num_clusters"] == 50 and cfg.method["background_neighbors"] is None  # la_regime's k
    with pytest.raises(ConfigError, match="background_neighbors"):
        load_config(None, ["method.name=la", "method.background_neighbors=0"])
    with pytest.raises(ConfigError, match="num_clusters"):
        make("la", n=10, num_clusters=11)
