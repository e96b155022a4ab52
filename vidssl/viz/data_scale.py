"""Accuracy against the number of pretraining videos (dense-trajectory paper, Sec. 4.7,
Fig. 4): one line per method, the mean and spread over the runs (seeds) that pretrained
on the same number of videos (``data.subset``)."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import yaml

from vidssl.viz.figures import pyplot, save_figure


def pretraining_videos(checkpoint: str) -> tuple[str, int] | None:
    """(method name, number of training videos) of a run, from its ``config.yaml`` and
    ``summary.json``; None for a checkpoint outside a finished run directory."""
    p = Path(checkpoint).resolve()
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    try:
        summary = json.loads((run / "summary.json").read_text())
        cfg = yaml.safe_load((run / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if "train_videos" not in summary or not isinstance(cfg, dict):
        return None
    method = cfg.get("method", {}).get("name", "?")
    return f"{method} ({cfg.get('model', {}).get('backbone', '?')})", int(summary["train_videos"])


def curves(points: list[tuple[str, int, float]]) -> dict[str, list[tuple[int, float, float, int]]]:
    """(method, videos, value) -> {method: [(videos, mean, std, runs)] sorted by videos}."""
    groups: dict[str, dict[int, list[float]]] = {}
    for method, videos, value in points:
        groups.setdefault(method, {}).setdefault(videos, []).append(float(value))
    return {m: [(n, statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
                for n, v in sorted(g.items())] for m, g in groups.items()}


def plot_data_scale(points: list[tuple[str, int, float]], out: str | Path, metric: str) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, rows in curves(points).items():
        ax.errorbar([r[0] for r in rows], [r[1] for r in rows], yerr=[r[2] for r in rows], marker="o",
                    capsize=3, label=method)
    ax.set_xlabel("pretraining videos")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)
