"""LA's K / k rule from the number of videos, and the size balance of clusterings."""
import math

import numpy as np
import pytest
import torch

from vidssl.errors import ClusteringError, ConfigError
from vidssl.methods.clustering import DEGENERATE_SHARE, balance_warning, cluster_balance, cluster_metrics
from vidssl.methods.la_regime import la_regime


def test_the_rule_gives_the_papers_setting_at_kinetics_size():
    r = la_regime(240_000, 3)
    assert r.background_neighbors == 4096
    assert abs(r.num_clusters - 6000) / 6000 < 0.05  # the paper's K = 6000
    assert 0.025 < r.close_fraction(3) < 0.035  # 3 x 41 / 4096


@pytest.mark.parametrize("n", [30, 210, 1200, 1600, 5000, 50_000])
@pytest.mark.parametrize("m", [1, 3, 6])
def test_the_rule_keeps_the_regime_at_any_size(n, m):
    r = la_regime(n, m)
    assert r.background_neighbors == min(n, 4096)
    assert 2 <= r.num_clusters <= n
    assert r.cluster_size >= 4  # a cluster is a group, not an instance
    assert abs(n / r.num_clusters - r.cluster_size) <= max(1.0, 0.1 * r.cluster_size)
    if r.cluster_size > 4:  # where the minimum size does not bind, the close set is ~3 % of the background
        assert 0.02 < r.close_fraction(m) < 0.045
    if n >= 1200:
        assert r.num_clusters >= 8 * 4  # much finer than tens of classes


def test_the_rule_refuses_nonsense():
    with pytest.raises(ConfigError, match="at least 2"):
        la_regime(1)
    with pytest.raises(ConfigError, match="close_fraction"):
        la_regime(100, close_fraction=0)


def reference_entropy(labels, k):
    counts = [sum(1 for v in labels if v == c) for c in sorted(set(labels))]
    n = sum(counts)
    h = -sum(c / n * math.log(c / n) for c in counts)
    return h, h / math.log(k)


@pytest.mark.parametrize("labels,k", [([0, 0, 1, 1], 2), ([0, 0, 0, 1], 2), ([3, 3, 3, 3, 3], 4),
                                      ([0, 1, 2, 3, 4, 5], 6), ([5, 5, 1, 2, 2, 2, 9], None)])
def test_balance_against_a_hand_computed_entropy(labels, k):
    b = cluster_balance(np.array(labels), k)
    kk = k or len(set(labels))
    h, norm = reference_entropy(labels, kk) if kk > 1 else (0.0, 1.0)
    assert b["size_entropy"] == pytest.approx(h)
    assert b["balance"] == pytest.approx(norm)
    assert b["largest_share"] == pytest.approx(max(labels.count(v) for v in set(labels)) / len(labels))
    assert b["used_clusters"] == len(set(labels))


def test_degenerate_clusterings_are_warned_about():
    even = cluster_balance(np.arange(100) % 10, 10)
    assert even["balance"] == pytest.approx(1.0) and balance_warning(even) is None
    skew = np.zeros(100, int)
    skew[:30] = np.arange(30) % 9 + 1  # 70 % in cluster 0
    b = cluster_balance(skew, 10)
    assert b["largest_share"] == pytest.approx(0.7) and b["largest_share"] > DEGENERATE_SHARE
    msg = balance_warning(b, "clustering 2 of idt")
    assert msg.startswith("warning: clustering 2 of idt is degenerate") and "70%" in msg
    m = cluster_metrics(skew, np.arange(100) % 4)
    assert m["largest_share"] == pytest.approx(0.7) and m["balance"] == pytest.approx(cluster_balance(skew)["balance"])
    with pytest.raises(ClusteringError):
        cluster_balance(np.array([], int))


def test_la_uses_the_rule_and_reports_the_balance():
    from vidssl.config import load_recipe
    from vidssl.methods import build_method

    cfg = load_recipe("la_tiny", ["method.num_clusters=null", "method.background_neighbors=null", "model.width=4"])
    method = build_method(cfg, num_samples=300, num_classes=0)
    r = la_regime(300, 3)
    assert (method.num_clusters, method.background_neighbors) == (r.num_clusters, r.background_neighbors)
    with torch.no_grad():
        method.memory_bank.bank.zero_()
        method.memory_bank.bank[:, 0] = 1.0  # every video at one point: one cluster takes (almost) all
        method.memory_bank.bank[:5, 1] = 10.0
        method.memory_bank.bank.copy_(torch.nn.functional.normalize(method.memory_bank.bank, dim=1))
    method.cluster(0)
    messages = method.pop_messages()
    assert messages[0].startswith(f"LA clusters (bank, epoch 0): K = {r.num_clusters} x 3")
    assert any(m.startswith("warning: clustering 1 of bank is degenerate") for m in messages)
    assert method.pop_messages() == []
    assert all(b["largest_share"] > 0.9 for b in method.balance)


@pytest.mark.parametrize("n,d", [(40, 12), (30, 100)])
def test_feature_transforms_against_numpy(n, d):
    from vidssl.methods.clustering import transform_features

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, d)) + 5.0).astype(np.float32)  # a large common component
    assert np.array_equal(transform_features(x, "none"), x)
    c = transform_features(x, "center")
    ref = x - x.mean(0)
    np.testing.assert_allclose(c, ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-4, atol=1e-5)
    w = transform_features(x, "whiten", dims=8)
    assert w.shape == (n, min(8, d)) and np.allclose(np.linalg.norm(w, axis=1), 1, atol=1e-5)
    # before the final L2, the whitened training vectors have identity covariance
    u, s, vt = np.linalg.svd(ref, full_matrices=False)
    z = ref @ vt[:8].T / (s[:8] / np.sqrt(n))
    np.testing.assert_allclose(z.T @ z / n, np.eye(8), atol=1e-4)
    np.testing.assert_allclose(w, z / np.linalg.norm(z, axis=1, keepdims=True), rtol=1e-3, atol=1e-4)
    other = rng.standard_normal((5, d)).astype(np.float32)
    assert transform_features(other, "center", fit_on=x).shape == (5, d)
    with pytest.raises(ClusteringError, match="unknown feature transform"):
        transform_features(x, "pca")


def test_la_refuses_an_unknown_cluster_transform():
    from vidssl.config import load_config

    with pytest.raises(ConfigError, match="cluster_transform"):
        load_config(None, ["method.name=la", "method.cluster_transform=pca"])


@pytest.mark.parametrize("source", ["file", "joint"])
def test_la_clusters_the_transformed_file_features(tmp_path, source):
    from vidssl.config import load_recipe
    from vidssl.methods import build_method
    from vidssl.methods.clustering import joint_space, transform_features

    n = 40
    x = (np.random.default_rng(1).standard_normal((n, 16)) + 3.0).astype(np.float32)
    np.save(tmp_path / "f.npy", x)
    cfg = load_recipe("la_tiny", ["model.width=4", f"method.cluster_source={source}",
                                  f"method.cluster_features={tmp_path / 'f.npy'}", "method.cluster_transform=center"])
    method = build_method(cfg, num_samples=n, num_classes=0)
    got = method.clustering_features()
    centred = transform_features(x, "center")
    if source == "file":
        np.testing.assert_allclose(got, centred, rtol=1e-5, atol=1e-6)
    else:
        bank = method.memory_bank.bank.detach().numpy()
        np.testing.assert_allclose(got, joint_space([bank, centred], [1.0, cfg.method["joint_weight"]]),
                                   rtol=1e-5, atol=1e-6)
