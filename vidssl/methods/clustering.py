"""k-means clusterings of any N x D features, and how clusters relate to labels.

Video LA (dense-trajectory paper, Sec. 3.2 and 4.2) groups the video embeddings
into K clusters with k-means, m times with different seeds "combined for
robustness" (K = 6000, m = 3 for Kinetics' ~240k videos; Table 6 ablates K and m).
The IDT prior (Sec. 3.3) clusters Fisher vectors instead, and the final tuning
step their concatenation with the bank — so this module knows nothing about where
the features come from: ``cluster_features(features, K, m)`` returns m label vectors.

Backends:

- ``faiss``: ``faiss.Kmeans`` (as in the authors' code), on the GPU when the
  installed faiss has GPU support and a GPU is visible, else on the CPU. No
  subsampling of the training points (``max_points_per_centroid`` is raised, as in
  the authors' code), final assignment by exact nearest centroid.
- ``torch``: Lloyd iterations in PyTorch (CUDA when available), used when faiss is
  missing. Same initialisation rule (K distinct random points) and the same
  empty-cluster rule as faiss (split the largest cluster).

``auto`` picks faiss when it imports, torch otherwise.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from vidssl.errors import ClusteringError


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def faiss_gpu_available() -> bool:
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def _as_float32(features) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().float().cpu().numpy()
    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if x.ndim != 2:
        raise ClusteringError(f"features must be a 2-d array [N, D] (got shape {x.shape})")
    if not np.isfinite(x).all():
        raise ClusteringError("features contain NaN or infinite values")
    return x


def kmeans_faiss(x: np.ndarray, k: int, *, niter: int = 20, seed: int = 0, spherical: bool = False,
                 gpu: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x: float32 [N, D] -> (labels int64 [N], centroids float32 [K, D]) with faiss."""
    import faiss

    if gpu is None:
        gpu = faiss_gpu_available()
    n, d = x.shape
    km = faiss.Kmeans(
        # one GPU (device 0): under DDP only rank 0 clusters, and must not take the others' GPUs
        d, k, niter=niter, seed=seed, spherical=spherical, gpu=1 if gpu else False, verbose=False,
        # Train on every point (the authors' code) and keep faiss quiet about few points per centroid.
        max_points_per_centroid=max(256, (n + k - 1) // k + 1), min_points_per_centroid=1,
    )
    km.train(x)
    _, labels = km.index.search(x, 1)
    return labels[:, 0].astype(np.int64), km.centroids.copy()


def _assign(x: torch.Tensor, c: torch.Tensor, max_elements: int = 1 << 25) -> torch.Tensor:
    """Nearest centroid of every row: argmin ||x - c||^2 = argmax (x.c - ||c||^2 / 2).

    Rows go in chunks so that the [chunk, K] score block stays under ``max_elements``
    (128 MiB of float32)."""
    half_norm = 0.5 * (c * c).sum(1)
    chunk = max(1, max_elements // max(1, len(c)))
    out = torch.empty(len(x), dtype=torch.long, device=x.device)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = (x[i:i + chunk] @ c.T - half_norm).argmax(1)
    return out


def kmeans_torch(x: np.ndarray | torch.Tensor, k: int, *, niter: int = 20, seed: int = 0, spherical: bool = False,
                 device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means in PyTorch: x [N, D] -> (labels int64 [N], centroids float32 [K, D]).

    Initial centroids: K distinct points drawn with ``seed``. An empty cluster takes
    half of the currently largest cluster (its centroid split in two by a small
    symmetric perturbation), the rule faiss uses.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    xt = torch.as_tensor(x, dtype=torch.float32).to(device)
    n, d = xt.shape
    g = torch.Generator().manual_seed(seed)
    c = xt[torch.randperm(n, generator=g)[:k].to(device)].clone()
    if spherical:
        c = torch.nn.functional.normalize(c, dim=1)
    eps = 1.0 / 1024
    for _ in range(niter):
        labels = _assign(xt, c)
        counts = torch.bincount(labels, minlength=k).float()
        sums = torch.zeros(k, d, device=device).index_add_(0, labels, xt)
        c = sums / counts.clamp_min(1).unsqueeze(1)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            big = int(counts.argmax())
            noise = torch.where(torch.rand(d, generator=g) < 0.5, 1.0, -1.0).to(device) * eps
            c[j] = c[big] * (1 + noise)
            c[big] = c[big] * (1 - noise)
            counts[j] = counts[big] / 2
            counts[big] -= counts[j]
        if spherical:
            c = torch.nn.functional.normalize(c, dim=1)
    labels = _assign(xt, c)
    return labels.cpu().numpy().astype(np.int64), c.cpu().numpy()


def kmeans(features, k: int, *, niter: int = 20, seed: int = 0, spherical: bool = False,
           backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """One k-means clustering: features [N, D] -> (labels int64 [N], centroids [K, D])."""
    x = _as_float32(features)
    n = len(x)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ClusteringError(f"bad number of clusters {k!r} (a positive integer)")
    if k > n:
        raise ClusteringError(f"cannot make {k} clusters of {n} samples (num_clusters must be <= N)")
    if niter < 1:
        raise ClusteringError(f"bad niter {niter} (>= 1)")
    if backend == "auto":
        backend = "faiss" if faiss_available() else "torch"
    if backend == "faiss":
        if not faiss_available():
            raise ClusteringError("backend 'faiss' asked for but faiss is not installed (pip install faiss-cpu)")
        return kmeans_faiss(x, int(k), niter=niter, seed=seed, spherical=spherical)
    if backend == "torch":
        return kmeans_torch(x, int(k), niter=niter, seed=seed, spherical=spherical)
    raise ClusteringError(f"bad clustering backend {backend!r} (allowed: auto, faiss, torch)")


def cluster_features(features, num_clusters: int | Sequence[int], num_clusterings: int | None = None, *,
                     seed: int = 0, niter: int = 20, spherical: bool = False,
                     backend: str = "auto") -> list[np.ndarray]:
    """m k-means clusterings of the same features (LA's "multiple runs of K-means").

    Args:
        features: [N, D] array or tensor (the memory bank, Fisher vectors, or their
            concatenation).
        num_clusters: K for every clustering, or one K per clustering.
        num_clusterings: m (default 3, the paper's; with a list of K, its length).
        seed: clustering i uses seed ``seed + i``.
        niter: Lloyd iterations (20 in the authors' code).
        spherical: re-normalise the centroids after every iteration.
        backend: ``auto`` | ``faiss`` | ``torch``.

    Returns:
        m label vectors, each int64 [N] with values in [0, K_i).
    """
    if isinstance(num_clusters, (list, tuple)):
        ks = [int(k) for k in num_clusters]
        if not ks:
            raise ClusteringError("num_clusters is an empty list")
        if num_clusterings is not None and num_clusterings != len(ks):
            raise ClusteringError(
                f"num_clusters lists {len(ks)} values but num_clusterings is {num_clusterings}"
            )
    else:
        m = 3 if num_clusterings is None else num_clusterings
        if m < 1:
            raise ClusteringError(f"bad num_clusterings {m} (>= 1)")
        ks = [num_clusters] * m
    x = _as_float32(features)
    return [kmeans(x, k, niter=niter, seed=seed + i, spherical=spherical, backend=backend)[0]
            for i, k in enumerate(ks)]


FEATURE_TRANSFORMS = ("none", "center", "whiten")


def transform_features(x, how: str, fit_on=None, dims: int = 256) -> np.ndarray:
    """What k-means sees: ``none`` (``x`` as given), ``center`` (minus the mean of ``fit_on``,
    then L2), ``whiten`` (PCA-whitened with the statistics of ``fit_on`` to at most ``dims``
    dimensions, then L2). ``fit_on`` defaults to ``x`` itself.

    Power- and L2-normalised (sketched) Fisher vectors share a large common component, so
    Euclidean k-means on them can put most videos in one cluster around the mean; removing
    the mean, or whitening, leaves the directions in which the videos differ.
    """
    x = _as_float32(x)
    if how == "none":
        return x
    if how not in FEATURE_TRANSFORMS:
        raise ClusteringError(f"unknown feature transform {how!r} (allowed: {', '.join(FEATURE_TRANSFORMS)})")
    ref = x if fit_on is None else _as_float32(fit_on)
    mean = ref.mean(0, keepdims=True, dtype=np.float64)
    y = x - mean
    if how == "whiten":
        _, sv, vt = np.linalg.svd(ref - mean, full_matrices=False)
        k = max(1, min(dims, int((sv > sv[0] * 1e-6).sum())))  # drop null directions (N < D)
        y = y @ vt[:k].T / (sv[:k] / np.sqrt(len(ref)))
    return (y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-12)).astype(np.float32)


def joint_space(parts: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """One row per video from several feature spaces: [w_1 u_1 ; w_2 u_2 ; ...].

    The dense-trajectory paper's final tuning (Sec. 3.3) clusters "the concatenation of
    the vectors d and p(psi) for each video" — the 128-d memory-bank vector and the
    2000-d IDT sketch. Every part is l2-normalised row-wise (all-zero rows stay zero)
    and scaled by its weight, so with weights 1 (the authors' code: plain concatenation
    of unit vectors) each part contributes equally however many dimensions it has: the
    squared distance between two videos is sum_i w_i^2 ||u_i - u_i'||^2.

    Args:
        parts: arrays or tensors [N, D_i] with the same N.
        weights: one weight >= 0 per part (default all 1).

    Returns:
        float32 [N, sum D_i].
    """
    xs = [_as_float32(p) for p in parts]
    if not xs:
        raise ClusteringError("joint_space needs at least one part")
    if len({len(x) for x in xs}) != 1:
        raise ClusteringError(f"joint_space parts have different numbers of rows: {[len(x) for x in xs]}")
    weights = [1.0] * len(xs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(xs) or any(w < 0 for w in weights):
        raise ClusteringError(f"joint_space needs one weight >= 0 per part (got {weights} for {len(xs)} parts)")
    out = []
    for x, w in zip(xs, weights):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        out.append(w * x / np.where(norm > 0, norm, 1.0))
    return np.ascontiguousarray(np.concatenate(out, axis=1), dtype=np.float32)


# a clustering whose largest cluster holds more than this share of the samples is
# reported as degenerate: LA's close set is then most of every background set
DEGENERATE_SHARE = 0.5


def cluster_balance(labels, num_clusters: int | None = None) -> dict:
    """Size balance of one clustering.

    Args:
        labels: cluster of every sample, [N] ints (or any hashable values).
        num_clusters: K asked for (default: the number of distinct labels); empty
            clusters count against the balance.

    Returns:
        ``{"largest_share", "size_entropy", "balance", "used_clusters"}``: the share of
        the samples in the largest cluster, the entropy (nats) of the cluster sizes, that
        entropy over its maximum log K (1 = equal sizes, 0 = one cluster), and the number
        of non-empty clusters.
    """
    counts = np.unique(np.asarray(labels).reshape(-1), return_counts=True)[1].astype(np.float64)
    if counts.size == 0:
        raise ClusteringError("cannot measure the balance of an empty clustering")
    k = max(int(num_clusters or 0), counts.size)
    p = counts / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    return {"largest_share": float(p.max()), "size_entropy": entropy,
            "balance": entropy / math.log(k) if k > 1 else 1.0, "used_clusters": int(counts.size)}


def balance_warning(balance: dict, what: str = "clustering") -> str | None:
    """A one-line warning when one cluster holds most samples (:data:`DEGENERATE_SHARE`), else None."""
    if balance["largest_share"] <= DEGENERATE_SHARE:
        return None
    return (f"warning: {what} is degenerate: its largest cluster holds {100 * balance['largest_share']:.0f}% of "
            f"the videos (size entropy {balance['balance']:.2f} of 1); LA's close neighbours then cover most of "
            "every background set (try more clusters, whitened features or balanced assignments)")


def _codes(values) -> np.ndarray:
    """Any label values (ints or strings) -> int codes [N]."""
    return np.unique(np.asarray(values), return_inverse=True)[1].reshape(-1)


def cluster_metrics(labels, ground_truth, ignore: Sequence = (-1,)) -> dict:
    """How a clustering relates to ground-truth labels.

    Args:
        labels: cluster of every sample, [N].
        ground_truth: label of every sample, [N] (ints or strings); samples whose
            label is in ``ignore`` (unlabelled, -1) are left out.

    Returns:
        ``{"nmi", "ari", "purity", "num_clusters", "num_classes", "num_samples",
        "largest_share", "balance"}``: normalised mutual information (arithmetic
        normalisation, sklearn's default), adjusted Rand index, purity = (1/N) sum over
        clusters of the count of its most frequent class, and the size balance of the
        clusters (:func:`cluster_balance`).
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = np.asarray(labels).reshape(-1)
    gt = np.asarray(ground_truth).reshape(-1)
    if len(labels) != len(gt):
        raise ClusteringError(f"{len(labels)} cluster labels but {len(gt)} ground-truth labels")
    ignored = {str(i) for i in ignore}
    keep = np.array([str(v) not in ignored for v in gt.tolist()], dtype=bool)
    labels, gt = labels[keep], gt[keep]
    if len(gt) == 0:
        raise ClusteringError("no labelled samples to compare the clusters with")
    c, y = _codes(labels), _codes(gt)
    table = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(table, (c, y), 1)
    return {
        "nmi": float(normalized_mutual_info_score(y, c)),
        "ari": float(adjusted_rand_score(y, c)),
        "purity": float(table.max(1).sum() / len(gt)),
        "num_clusters": int(table.shape[0]),
        "num_classes": int(table.shape[1]),
        "num_samples": int(len(gt)),
        "largest_share": float(table.sum(1).max() / len(gt)),
        "balance": cluster_balance(c)["balance"],
    }
