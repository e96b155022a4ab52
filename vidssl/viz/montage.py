"""Montage of clusters: K random clusters, a few member videos each, a few middle frames per member.

The dense-trajectory paper's Figs. 2-3 show clusters found by Video LA: without the IDT
prior they group scenes (appearance), with it motions. One row per cluster; each cell
is a member video as a strip of its middle frames (:func:`vidssl.eval.retrieval.middle_frames`),
titled with the member's label when one is given, so it shows at a glance whether a
cluster gathers one motion class or one background.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vidssl.errors import ConfigError
from vidssl.viz.figures import pyplot, save_figure


def pick_clusters(labels: np.ndarray, clusters: int, members: int, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """``clusters`` random non-empty clusters of ``labels`` [N] (sorted by id), each with up to
    ``members`` random member indices (sorted): ``[(cluster id, indices), ...]``."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ConfigError("no cluster labels to show")
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    chosen = np.sort(rng.choice(ids, size=min(clusters, len(ids)), replace=False))
    out = []
    for c in chosen:
        idx = np.flatnonzero(labels == c)
        out.append((int(c), np.sort(rng.choice(idx, size=min(members, len(idx)), replace=False))))
    return out


def save_cluster_montage(out: Path, labels: np.ndarray, paths: Sequence[str], *, clusters: int = 4,
                         members: int = 6, frames: int = 3, seed: int = 0, names: Sequence[str] | None = None,
                         backend: str = "pyav", title: str = "") -> Path:
    """Write the montage PNG of :func:`pick_clusters`; ``paths`` [N] follow ``labels`` [N];
    ``names`` [N] (optional) title each member cell (e.g. its motion class)."""
    plt = pyplot()

    from vidssl.eval.retrieval import middle_frames

    labels = np.asarray(labels).reshape(-1)
    if len(paths) != len(labels):
        raise ConfigError(f"{len(labels)} cluster labels but {len(paths)} videos in the manifest")
    picked = pick_clusters(labels, clusters, members, seed)
    cols = max(len(idx) for _, idx in picked)
    fig, axes = plt.subplots(len(picked), cols, figsize=(1.1 * frames * cols, 1.3 * len(picked)), squeeze=False)
    for r, (c, idx) in enumerate(picked):
        for k in range(cols):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= len(idx):
                ax.axis("off")
                continue
            strip = np.concatenate(list(middle_frames(paths[int(idx[k])], frames, backend)), axis=1)  # [H, F*W, 3]
            ax.imshow(strip)
            if names is not None:
                ax.set_title(str(names[int(idx[k])]), fontsize=6)
        axes[r, 0].set_ylabel(f"cluster {c}\n({int((labels == c).sum())} videos)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, out, dpi=100)
