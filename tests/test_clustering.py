"""k-means clusterings (faiss and torch) and cluster-vs-label metrics."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from vidssl.errors import ClusteringError
from vidssl.methods import clustering
from vidssl.methods.clustering import cluster_features, cluster_metrics, kmeans, kmeans_torch


def blobs(n_per=40, k=5, d=8, seed=0, spread=0.05):
    """k well-separated Gaussian blobs: (x [n_per*k, d], truth [n_per*k])."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    truth = np.repeat(np.arange(k), n_per)
    x = centres[truth] + spread * rng.normal(size=(len(truth), d))
    perm = rng.permutation(len(truth))
    return x[perm].astype(np.float32), truth[perm]


def slow_lloyd(x, init, niter):
    """Obviously-correct Lloyd iterations from given initial centroids (no empty clusters expected)."""
    c = init.astype(np.float64).copy()
    x = x.astype(np.float64)
    for _ in range(niter):
        labels = np.array([np.argmin([((p - q) ** 2).sum() for q in c]) for p in x])
        for j in range(len(c)):
            members = x[labels == j]
            assert len(members), "reference assumes no empty cluster"
            c[j] = members.mean(0)
    return np.array([np.argmin([((p - q) ** 2).sum() for q in c]) for p in x])


@pytest.mark.parametrize("n,d,k,niter", [(60, 3, 4, 5), (90, 6, 7, 3), (40, 2, 2, 8)])
def test_torch_kmeans_matches_slow_lloyd(n, d, k, niter):
    rng = np.random.default_rng(n + d)
    x = rng.normal(size=(n, d)).astype(np.float32)
    seed = 3
    init_idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].numpy()
    ref = slow_lloyd(x, x[init_idx], niter)
    got, centroids = kmeans_torch(x, k, niter=niter, seed=seed, device="cpu")
    assert centroids.shape == (k, d)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_recovers_separated_blobs(backend):
    x, truth = blobs()
    labels = cluster_features(x, 8, 3, seed=0, niter=20, backend=backend)
    assert len(labels) == 3
    purities = []
    for lab in labels:
        assert lab.shape == (len(x),) and lab.dtype == np.int64
        assert lab.min() >= 0 and lab.max() < 8
        purities.append(cluster_metrics(lab, truth)["purity"])
    # Lloyd can settle with one centroid between two blobs (purity 0.8 here), but some of
    # the m differently-seeded runs split every blob cleanly (why LA combines m runs)
    assert max(purities) == 1.0 and min(purities) >= 0.8


def test_faiss_labels_are_nearest_centroid():
    x, _ = blobs(n_per=30, k=4, d=5, seed=1, spread=1.0)
    labels, c = kmeans(x, 6, niter=10, seed=2, backend="faiss")
    d2 = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d2.argmin(1))


def test_list_of_k_and_seeds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    labels = cluster_features(x, [3, 5, 9], seed=7, backend="torch")
    assert [int(lab.max()) + 1 for lab in labels] == [3, 5, 9]
    again = cluster_features(torch.from_numpy(x), [3, 5, 9], seed=7, backend="torch")
    for a, b in zip(labels, again):
        np.testing.assert_array_equal(a, b)
    # same K, different seeds: the m clusterings of unstructured data differ
    a, b = cluster_features(x, 8, 2, seed=0, backend="faiss")
    assert cluster_metrics(a, b)["ari"] < 0.99


def test_auto_falls_back_to_torch_without_faiss(monkeypatch):
    calls = []
    real = clustering.kmeans_torch

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(clustering, "faiss_available", lambda: False)
    monkeypatch.setattr(clustering, "kmeans_torch", spy)
    x, truth = blobs(n_per=10, k=3, d=4)
    (lab,) = cluster_features(x, 3, 1)
    assert calls and cluster_metrics(lab, truth)["nmi"] > 0.99
    with pytest.raises(ClusteringError, match="faiss is not installed"):
        cluster_features(x, 3, 1, backend="faiss")


def test_empty_clusters_are_refilled():
    # 12 points at 3 locations, 6 clusters: Lloyd from random points empties clusters
    x = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)
    labels, _ = kmeans_torch(x, 6, niter=5, seed=0, device="cpu")
    assert labels.shape == (12,)
    # every point still sits with the points at its own location
    for loc in range(3):
        assert len(set(labels[4 * loc:4 * loc + 4].tolist())) >= 1
    assert cluster_metrics(labels, np.repeat(np.arange(3), 4))["purity"] == 1.0


@pytest.mark.parametrize("bad,match", [
    (dict(features=np.zeros(5, np.float32), num_clusters=2), "2-d"),
    (dict(features=np.zeros((5, 2), np.float32), num_clusters=6), "<= N"),
    (dict(features=np.zeros((5, 2), np.float32), num_clusters=0), "number of clusters"),
    (dict(features=np.full((5, 2), np.nan, np.float32), num_clusters=2), "NaN"),
    (dict(features=np.zeros((5, 2), np.float32), num_clusters=[2, 3], num_clusterings=3), "lists 2"),
    (dict(features=np.zeros((5, 2), np.float32), num_clusters=2, backend="sklearn"), "backend"),
])
def test_bad_input(bad, match):
    with pytest.raises(ClusteringError, match=match):
        cluster_features(**bad)


def slow_purity(labels, truth):
    total = 0
    for c in set(labels):
        members = [t for lab, t in zip(labels, truth) if lab == c]
        total += max(members.count(t) for t in set(members))
    return total / len(labels)


@pytest.mark.parametrize("n,kc,ky,seed", [(50, 4, 3, 0), (200, 10, 5, 1), (30, 2, 6, 2)])
def test_cluster_metrics_match_references(n, kc, ky, seed):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, kc, n)
    y = rng.integers(0, ky, n)
    m = cluster_metrics(lab, y)
    assert math.isclose(m["nmi"], normalized_mutual_info_score(y, lab), abs_tol=1e-12)
    assert math.isclose(m["ari"], adjusted_rand_score(y, lab), abs_tol=1e-12)
    assert math.isclose(m["purity"], slow_purity(lab.tolist(), y.tolist()), abs_tol=1e-12)
    assert m["num_samples"] == n


def test_cluster_metrics_strings_permutations_and_unlabelled():
    y = np.array(["sky", "sky", "grass", "grass", "sand", "sand"])
    lab = np.array([2, 2, 0, 0, 1, 1])
    m = cluster_metrics(lab, y)
    assert m["nmi"] == pytest.approx(1.0) and m["ari"] == pytest.approx(1.0) and m["purity"] == 1.0
    y_int = np.array([0, 0, 1, 1, -1, -1])
    m = cluster_metrics(np.array([5, 5, 3, 3, 5, 3]), y_int)
    assert m["num_samples"] == 4 and m["purity"] == 1.0
    with pytest.raises(ClusteringError, match="no labelled"):
        cluster_metrics([0, 1], [-1, -1])
    with pytest.raises(ClusteringError, match="3 cluster labels but 2"):
        cluster_metrics([0, 1, 1], [0, 1])


def _manifest_and_features(tmp_path):
    """12 'videos': features that group by the 'scene' column, not by the label."""
    from vidssl.data.manifests import write_manifest

    scene = np.repeat(np.arange(3), 4)
    label = np.tile(np.arange(2), 6)
    feats = np.eye(3, dtype=np.float32)[scene] * 4 + 0.01 * np.random.default_rng(0).normal(size=(12, 3))
    np.save(tmp_path / "feats.npy", feats.astype(np.float32))
    write_manifest(tmp_path / "m.csv", [f"v{i}.mp4" for i in range(12)], [f"c{y}" for y in label],
                   scene=[f"s{s}" for s in scene], uid=[str(i) for i in range(12)])
    return scene, label


def test_cluster_command_on_saved_features(tmp_path, capsys):
    import json

    from vidssl.cli import main

    _manifest_and_features(tmp_path)
    code = main(["cluster", "--features", str(tmp_path / "feats.npy"), "--manifest", str(tmp_path / "m.csv"),
                 "--clusters", "3", "--clusterings", "2", "--json", str(tmp_path / "r.json"),
                 "--out", str(tmp_path / "labels.npy")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    # 'uid' differs for every video: not a label column
    assert set(report["metrics"]) == {"label", "scene"}
    # the clusters follow the scene (a Lloyd run may still merge two scenes), not the label
    assert report["metrics"]["scene"]["mean"]["nmi"] > 0.6
    assert report["metrics"]["label"]["mean"]["nmi"] < 0.1
    assert np.load(tmp_path / "labels.npy").shape == (2, 12)
    assert "scene" in capsys.readouterr().out
    assert main(["cluster", "--features", str(tmp_path / "feats.npy"), "--manifest", str(tmp_path / "m.csv"),
                 "--stored"]) == 2  # --stored needs --run: a config error, exit code 2


def test_cluster_command_rejects_misaligned_manifest(tmp_path):
    from vidssl.cli import main

    _manifest_and_features(tmp_path)
    np.save(tmp_path / "short.npy", np.zeros((5, 3), np.float32))
    assert main(["cluster", "--features", str(tmp_path / "short.npy"), "--manifest", str(tmp_path / "m.csv")]) == 2


def test_cluster_command_on_a_run(tmp_path):
    import json

    import torch

    from vidssl.cli import main
    from vidssl.config import load_config, to_dict
    from vidssl.engine.checkpoint import FORMAT, save_checkpoint

    scene, _ = _manifest_and_features(tmp_path)
    cfg = load_config(None, ["method.name=la", f"data.train={tmp_path / 'm.csv'}", "method.num_clusters=3"])
    bank = torch.nn.functional.normalize(torch.from_numpy(np.load(tmp_path / "feats.npy")), dim=1)
    stored = torch.from_numpy(np.stack([scene, scene, np.arange(12) % 3]))
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "last.pt", {
        "format": FORMAT, "method": "la", "backbone": "r3d18", "config": to_dict(cfg),
        "model": {"memory_bank.bank": bank, "cluster_labels": stored, "clustered_epoch": torch.tensor(3)},
    })
    assert main(["cluster", "--run", str(run), "--stored", "--json", str(tmp_path / "s.json")]) == 0
    per = json.loads((tmp_path / "s.json").read_text())["metrics"]["scene"]["per_clustering"]
    assert [round(m["nmi"], 6) for m in per[:2]] == [1.0, 1.0] and per[2]["nmi"] < 0.5
    # re-clustering the bank: K from the run's config (3), the manifest from its data.train
    assert main(["cluster", "--run", str(run), "--json", str(tmp_path / "k.json")]) == 0
    report = json.loads((tmp_path / "k.json").read_text())
    assert report["num_clusters"] == [3, 3, 3] and report["metrics"]["scene"]["mean"]["nmi"] > 0.6
