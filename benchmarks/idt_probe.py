"""IDT Fisher vectors of the benchmark splits, and what they carry (motion or scene).

Used by ``bench_claims.py`` (the calibration row of the IDT prior) and
``bench_idt_prior.py`` (the options that make the IDT clustering balanced and faithful to
motion). Descriptors of every video go to one folder per set of extraction options
(``FOLDER/descriptors`` for the default, resumable: a video whose file exists is not
extracted again); the Fisher model is fitted on the training videos only.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vidssl.data.builtin import open_manifest
from vidssl.eval.clusters import label_columns
from vidssl.idt.extract import extract_manifest
from vidssl.idt.fisher import FisherConfig
from vidssl.idt.options import IDTOptions
from vidssl.idt.pipeline import descriptor_files, encode_files, fit_fisher
from vidssl.methods.clustering import cluster_balance, cluster_metrics, kmeans


IDT_OPTIONS = ["flow=dis", "camera=false", "max_tracks=300", "min_var=0.5"]  # la_idt_tiny's IDT settings


def parse_options(words: list[str]) -> dict:
    """``["flow=dis", "min_var=0.5"]`` -> a dict of typed values (yaml scalars)."""
    import yaml

    return {k: yaml.safe_load(v) for k, v in (w.split("=", 1) for w in words)}


def descriptor_folder(folder: Path, options: dict) -> Path:
    """``folder/descriptors`` for the benchmark's default options, a hashed name for others."""
    if options == parse_options(IDT_OPTIONS):
        return folder / "descriptors"
    tag = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    return folder / f"descriptors_{tag}"


def split_vectors(data: dict[str, str], folder: Path, idt_options: dict, fisher: dict, workers: int,
                  splits: tuple[str, ...] = ("train", "val", "test")) -> dict:
    """{split: (features [N, D], manifest)} for ``splits`` (train first: the Fisher model is
    fitted on it), extracting the descriptors that are missing."""
    manifests = {s: open_manifest(data[s]) for s in splits}
    desc = descriptor_folder(folder, idt_options)
    opts = IDTOptions.from_dict(idt_options)
    every = [p for m in manifests.values() for p in m.paths]
    stats = extract_manifest(every, desc, opts, workers=workers, progress=False)
    if stats["failed"]:
        raise RuntimeError(f"IDT extraction failed for {len(stats['failed'])} videos: {stats['failed'][:3]}")
    model, _ = fit_fisher(descriptor_files(manifests["train"].paths, desc), FisherConfig(**fisher))
    out = {}
    for split, m in manifests.items():
        feats, _missing = encode_files(descriptor_files(m.paths, desc), model)
        out[split] = (feats, m)
    return out


def cluster_figures(x: np.ndarray, manifest, k: int, spherical: bool = False, seeds=(0, 1, 2)) -> dict:
    """k-means of ``x`` [N, D] (K = k) at each seed (LA combines m = 3 clusterings): the mean
    NMI against motion and scene, and the worst clustering's balance (largest share, entropy)."""
    cols = label_columns(manifest)
    nmi_m, nmi_a, largest, entropy = [], [], [], []
    for seed in seeds:
        labels, _ = kmeans(x, k, seed=seed, spherical=spherical)
        bal = cluster_balance(labels, k)
        nmi_m.append(cluster_metrics(labels, cols["label"])["nmi"])
        nmi_a.append(cluster_metrics(labels, cols["appearance"])["nmi"])
        largest.append(bal["largest_share"])
        entropy.append(bal["balance"])
    return {"nmi_motion": float(np.mean(nmi_m)), "nmi_appearance": float(np.mean(nmi_a)),
            "largest": max(largest), "entropy": min(entropy)}


def linear_accuracy(train_x, train_y, test_x, test_y) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(train_x), train_y)
    return float((clf.predict(scaler.transform(test_x)) == np.asarray(test_y)).mean())


def fisher_vector_figures(data: dict[str, str], folder: Path, options: list[str], workers: int,
                          fisher: dict | None = None) -> dict:
    """The calibration row of the IDT prior: linear classifier (motion and scene, test; motion,
    val) and k-means on the val vectors (K = 8)."""
    vecs = split_vectors(data, Path(folder), parse_options(options), fisher or {"components": 32}, workers)
    (tr, mtr), (va, mva), (te, mte) = vecs["train"], vecs["val"], vecs["test"]
    col = {s: label_columns(m) for s, m in (("train", mtr), ("val", mva), ("test", mte))}
    km = cluster_figures(va, mva, 8)
    return {
        "motion": linear_accuracy(tr, col["train"]["label"], te, col["test"]["label"]),
        "appearance": linear_accuracy(tr, col["train"]["appearance"], te, col["test"]["appearance"]),
        "motion_val": linear_accuracy(tr, col["train"]["label"], va, col["val"]["label"]),
        "kmeans_nmi_motion": km["nmi_motion"], "kmeans_nmi_appearance": km["nmi_appearance"],
        "kmeans_largest": km["largest"],
    }
