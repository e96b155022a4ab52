"""The clusters of every stage of the LA + IDT workflow against the manifest's labels,
and cluster montages (dense-trajectory paper Sec. 4.5, Figs. 2 and 3).

Entries (each m clusterings of the N training videos, K clusters each):

=========== ==================================================================
``ir``        k-means of the Video IR memory bank (what plain LA starts from)
``la``        the last clusters plain Video LA trained on (its bank; Fig. 2)
``idt``       the fixed IDT clusters LA + IDT prior trained on (Sec. 3.3)
``la_idt``    k-means of the LA + IDT memory bank: what the network took from the prior
``la_joint``  the last joint-space clusters [bank ; IDT] of the tuning stage (Fig. 3)
=========== ==================================================================

For every entry and every label column of the manifest (``label``, and e.g.
``appearance`` of the built-in data): NMI, adjusted Rand index and purity, the mean
over the m clusterings (:func:`vidssl.eval.clusters.cluster_report`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from vidssl.methods.clustering import balance_warning, cluster_balance

DESCRIPTIONS = {
    "ir": "k-means of the Video IR memory bank",
    "la": "plain Video LA: its last clusters (memory bank)",
    "idt": "Video LA + IDT prior: the fixed IDT clusters it trained on",
    "la_idt": "k-means of the Video LA + IDT prior memory bank",
    "la_joint": "joint tuning: its last clusters of [bank ; IDT]",
}


def _model_state(checkpoint: Path) -> dict:
    from vidssl.engine.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)["model"]


def _stored(state: dict) -> Optional[list[np.ndarray]]:
    """An LA checkpoint's own clusterings [m] x [N], or None before its first clustering."""
    if "cluster_labels" not in state or int(state.get("clustered_epoch", -1)) < 0:
        return None
    return [row.numpy().astype(np.int64) for row in state["cluster_labels"]]


def stage_clusterings(checkpoints: dict[str, Path], k: int, m: int, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """{entry: m label vectors [N]} from the checkpoints of the stages that ran.

    ``checkpoints``: {training stage: last.pt}; k, m: K and m of the bank k-means (the
    LA stages' own). Entries in the order of :data:`DESCRIPTIONS`.
    """
    from vidssl.methods.clustering import cluster_features

    def bank_kmeans(state):
        return cluster_features(state["memory_bank.bank"].float().numpy(), k, m, seed=seed)

    out = {}
    for stage, path in checkpoints.items():
        state = _model_state(path)
        if stage == "ir":
            out["ir"] = bank_kmeans(state)
        elif stage == "la_idt":
            out["idt"] = _stored(state)
            out["la_idt"] = bank_kmeans(state)
        else:  # la, la_joint: the clusters they trained on last
            out[stage] = _stored(state)
    return {e: out[e] for e in DESCRIPTIONS if out.get(e) is not None}


def analyse(checkpoints: dict[str, Path], manifest, out: Path, k: int, m: int, montage=None) -> dict:
    """Write ``out/clusters.json`` (and ``out/montages/ENTRY.png`` when ``montage`` is an
    :class:`~vidssl.workflow.recipe.AnalysisConfig` with ``montage: true``); returns the report."""
    from vidssl.eval.clusters import cluster_report, label_columns

    labelings = stage_clusterings(checkpoints, k, m)
    columns = label_columns(manifest)
    report = {"num_videos": len(manifest), "columns": list(columns), "entries": {}}
    for name, labs in labelings.items():
        r = cluster_report(labs, columns)
        report["entries"][name] = {
            "clusters": DESCRIPTIONS[name], "K": int(max(len(np.unique(lab)) for lab in labs)), "m": len(labs),
            "metrics": {col: v["mean"] for col, v in r.items()},
            "per_clustering": {col: v["per_clustering"] for col, v in r.items()},
            "balance": [cluster_balance(lab) for lab in labs],
        }
    out.mkdir(parents=True, exist_ok=True)
    if montage is not None and montage.montage:
        report["montages"] = draw_montages(labelings, manifest, out / "montages", montage)
    (out / "clusters.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def member_names(manifest) -> list[str]:
    """A title per video: its motion class and the other label columns (e.g. the scene)."""
    from vidssl.eval.clusters import label_columns

    cols = label_columns(manifest)
    names = []
    for i, y in enumerate(manifest.labels):
        parts = [manifest.classes[y] if manifest.classes and 0 <= y < len(manifest.classes) else str(y)]
        parts += [str(v[i]) for c, v in cols.items() if c != "label"]
        names.append(" / ".join(parts))
    return names


def draw_montages(labelings: dict, manifest, folder: Path, opts) -> dict[str, str]:
    """One montage per entry (its first clustering): {entry: png path}."""
    from vidssl.viz.montage import save_cluster_montage

    names = member_names(manifest)
    out = {}
    for name, labs in labelings.items():
        path = save_cluster_montage(folder / f"{name}.png", labs[0], manifest.paths, clusters=opts.clusters,
                                    members=opts.members, frames=opts.frames, seed=opts.seed, names=names,
                                    title=f"{name}: {DESCRIPTIONS[name]}")
        out[name] = str(path)
    return out


def format_report(report: dict) -> str:
    """The NMI / ARI / purity table of :func:`analyse`'s report."""
    cols = report["columns"]
    head = (f"{'clusters':<10} {'K':>4} {'m':>2} {'largest':>7} {'entropy':>7}  "
            + "  ".join(f"{c + ' nmi/ari/purity':>28}" for c in cols))
    lines, warnings = [head], []
    for name, e in report["entries"].items():
        cells = "  ".join(f"{e['metrics'][c]['nmi']:>10.3f}{e['metrics'][c]['ari']:>9.3f}{e['metrics'][c]['purity']:>9.3f}"
                          for c in cols)
        balance = e.get("balance") or [{"largest_share": float("nan"), "balance": float("nan")}]
        # the worst clustering of the entry: the largest cluster share, the lowest size entropy
        largest, entropy = max(b["largest_share"] for b in balance), min(b["balance"] for b in balance)
        lines.append(f"{name:<10} {e['K']:>4} {e['m']:>2} {100 * largest:>6.0f}% {entropy:>7.2f}  {cells}   "
                     f"{e['clusters']}")
        warnings += [w for i, b in enumerate(e.get("balance", []))
                     if (w := balance_warning(b, f"{name} clustering {i + 1}"))]
    return "\n".join(lines + warnings)
