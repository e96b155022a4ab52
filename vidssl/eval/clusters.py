"""Clusterings of a run's memory bank (or of any saved features) against the labels of a
manifest (``vidssl cluster``, ``vidssl viz clusters``, the LA + IDT workflow's analysis).

For every clustering and every label column of the manifest (``label`` and the other
columns that group the videos, e.g. ``appearance`` of the built-in data):
NMI, adjusted Rand index and purity (:func:`vidssl.methods.clustering.cluster_metrics`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vidssl.data.builtin import open_manifest
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.errors import ClusteringError, ConfigError
from vidssl.eval.protocols import resolve_checkpoint
from vidssl.methods.clustering import balance_warning, cluster_balance, cluster_features, cluster_metrics
from vidssl.methods.la_regime import la_regime
from vidssl.methods.feature_file import load_feature_file


def label_columns(manifest) -> dict[str, list]:
    """The manifest's label columns: ``label`` (when labelled) and every other column
    that groups the videos (neither constant nor different for every video)."""
    out = {}
    if any(int(y) >= 0 for y in manifest.labels):
        out["label"] = list(manifest.labels)
    for name, values in manifest.columns.items():
        if name in ("path", "label"):
            continue
        distinct = len(set(values))
        if 1 < distinct < len(values):
            out[name] = list(values)
    return out



def cluster_report(labelings: list[np.ndarray], columns: dict[str, list]) -> dict:
    """{column: {"per_clustering": [metrics...], "mean": {nmi, ari, purity}}}."""
    report = {}
    for name, truth in columns.items():
        per = [cluster_metrics(lab, np.asarray(truth)) for lab in labelings]
        mean = {k: float(np.mean([m[k] for m in per])) for k in ("nmi", "ari", "purity")}
        report[name] = {"per_clustering": per, "mean": mean}
    return report



def load_bank_checkpoint(path: str) -> dict:
    """An IR/LA checkpoint (or run directory) that holds a memory bank."""
    ckpt = load_checkpoint(resolve_checkpoint(path))
    if "memory_bank.bank" not in ckpt["model"]:
        raise ConfigError(f"checkpoint {path} has no memory bank (method {ckpt.get('method')!r}; "
                          "banks belong to 'ir' and 'la' runs)")
    return ckpt



def stored_clusterings(ckpt: dict, name: str) -> list[np.ndarray]:
    """The m clusterings an LA checkpoint holds (buffer ``cluster_labels`` [m, N]), as int64 arrays [N]
    whose rows follow the run's training manifest."""

    if "cluster_labels" not in ckpt["model"]:
        raise ConfigError(f"checkpoint {name} holds no cluster labels (not an LA run)")
    if int(ckpt["model"].get("clustered_epoch", 0)) < 0:
        raise ConfigError(f"checkpoint {name} has not clustered yet (still in its IR warm-up)")
    return [row.numpy().astype(np.int64) for row in ckpt["model"]["cluster_labels"]]



def run_manifest(cfg: dict):
    """The training manifest of a run's config (rows of its memory bank and cluster labels)."""
    d = cfg["data"]
    return open_manifest(d["train"], format=d.get("format", "auto"), root=d.get("root"), split=d.get("split", 1),
                         subset="train", label_column=d.get("label_column", "label"), check_files=False)


def load_labelings(run: str | None = None, labels: str | None = None, manifest: str | None = None):
    """(list of label arrays [N], manifest, source name, video backend): the clusterings an LA
    checkpoint stores (``run``), or a .npy of labels [N] or [m, N] (``labels``) whose rows follow
    ``manifest``."""
    videos = open_manifest(manifest) if manifest else None
    if run:
        ckpt = load_checkpoint(resolve_checkpoint(run))
        backend = ckpt["config"].get("data", {}).get("backend", "pyav")
        return stored_clusterings(ckpt, run), videos or run_manifest(ckpt["config"]), run, backend
    if videos is None:
        raise ConfigError("--labels needs --manifest (the videos its rows follow)")
    if not Path(labels).is_file():
        raise ConfigError(f"cluster labels file not found: {labels}")
    try:
        arr = np.load(labels, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ClusteringError(f"cannot read cluster labels {labels}: {e}") from None
    if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"{labels}: expected integer cluster labels [N] or [m, N], got {arr.dtype} {arr.shape}")
    return list(np.atleast_2d(arr)), videos, labels, "pyav"


def read_features(path: str) -> np.ndarray:
    """:func:`~vidssl.methods.feature_file.load_feature_file`, with a file that is not an array
    (corrupt, or a pickle of something else) as one :class:`ClusteringError`."""
    if not Path(path).is_file():
        raise ConfigError(f"features file not found: {path}")
    try:
        return load_feature_file(path)
    except ConfigError:  # not there, unknown suffix, not [N, F]
        raise
    except Exception as e:  # a truncated file, a pickle error, an object that is not an array
        why = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else ""  # its first sentence
        raise ClusteringError(f"cannot read features {path}: corrupt or not an [N, F] array "
                              f"({type(e).__name__}{': ' + why if why else ''})") from None


def member_names(manifest, column: str) -> list[str] | None:
    """The value of ``column`` for every video (class names for the label column); None if absent."""
    if column == manifest.label_column:
        if all(y < 0 for y in manifest.labels):
            return None
        return [manifest.classes[y] if 0 <= y < len(manifest.classes) else str(y) for y in manifest.labels]
    return list(manifest.columns[column]) if column in manifest.columns else None


def cluster_run(run: str | None = None, features: str | None = None, *, stored: bool = False,
                manifest: str | None = None, clusters: list[int] | None = None, clusterings: int | None = None,
                seed: int = 0, niter: int = 20, backend: str = "auto") -> tuple[list[np.ndarray], dict]:
    """Cluster a run's memory bank (``run``) or an [N, F] feature file (``features``), or take
    the clusterings an LA run stores (``stored``); measure them against ``manifest`` (default
    for ``run``: its training manifest). Returns (labelings [N] each, the report)."""
    videos, ks = None, clusters
    if run:
        ckpt = load_bank_checkpoint(run)
        feats = ckpt["model"]["memory_bank.bank"].float().numpy()
        if manifest is None:
            videos = run_manifest(ckpt["config"])
        if ks is None and ckpt["config"]["method"].get("num_clusters"):
            ks = [int(ckpt["config"]["method"]["num_clusters"])]
    else:
        if stored:
            raise ConfigError("--stored goes with --run (an LA checkpoint holds its clusterings)")
        feats = read_features(features)
    if manifest is not None:
        videos = open_manifest(manifest, check_files=False)
    n = len(feats)
    if videos is not None and len(videos) != n:
        raise ConfigError(f"the features have {n} rows but the manifest {videos.source} has {len(videos)} videos")
    if stored:
        labelings, what = stored_clusterings(ckpt, run), "stored clusterings"
    else:
        ks = ks or [la_regime(n, clusterings or 3).num_clusters]
        labelings = cluster_features(feats, ks if len(ks) > 1 else ks[0], clusterings if len(ks) == 1 else None,
                                     seed=seed, niter=niter, backend=backend)
        what = f"k-means, K = {', '.join(map(str, ks))}"
    report = {"num_samples": n, "dim": int(feats.shape[1]), "clusterings": len(labelings), "what": what,
              "num_clusters": [int(len(np.unique(lab))) for lab in labelings],
              "balance": [cluster_balance(lab) for lab in labelings]}
    if videos is not None:
        report["metrics"] = cluster_report(labelings, label_columns(videos))
    return labelings, report


def format_cluster_report(report: dict) -> str:
    """The report of :func:`cluster_run` as a text table (a row per clustering and column)."""
    lines = [f"{report['clusterings']} clusterings of {report['num_samples']} x {report['dim']} features "
             f"({report['what']}); clusters per clustering: {report['num_clusters']}"]
    for i, b in enumerate(report.get("balance", [])):
        lines.append(f"clustering {i}: largest cluster {100 * b['largest_share']:.1f}% of the samples, "
                     f"size entropy {b['balance']:.2f} of 1")
        warning = balance_warning(b, f"clustering {i}")
        if warning:
            lines.append(warning)
    metrics = report.get("metrics")
    if metrics is not None:
        width = max([len(c) for c in metrics] + [6])
        lines.append(f"{'column':<{width}}  clustering    nmi    ari  purity")
        for col, r in metrics.items():
            rows = [(str(i), m) for i, m in enumerate(r["per_clustering"])] + [("mean", r["mean"])]
            lines += [f"{col:<{width}}  {i:>10}  {m['nmi']:.3f}  {m['ari']:.3f}  {m['purity']:.3f}" for i, m in rows]
    return "\n".join(lines)
