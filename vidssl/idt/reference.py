"""Agreement with the original IDT code's text output (its 436-column lines).

Used by tests/test_idt_reference.py and benchmarks/bench_idt.py: trajectories are matched
when they end on the same frame, on the same pyramid scale, with mean positions within
``tol`` pixels (both coordinates); the cosine similarity of each descriptor type of the
matched pairs is then compared.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from vidssl.idt.options import DESCRIPTORS, IDTOptions


def load_text(path: str | os.PathLike) -> np.ndarray:
    """Rows of an original ``DenseTrackStab`` output (plain or .gz text) -> float32 [N, 436]."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = [np.asarray(line.split(), np.float32) for line in f if line.strip()]
    return np.stack(rows) if rows else np.zeros((0, 436), np.float32)


def compare(ours: np.ndarray, ref: np.ndarray, tol: float = 1.0, opts: IDTOptions | None = None) -> dict:
    """{"count_ours", "count_ref", "count_ratio", "matched", "cos": {type: median cosine}}."""
    opts = opts or IDTOptions()
    cols = opts.columns()
    sims = {k: [] for k in DESCRIPTORS}
    matched = 0
    for frame in np.unique(ref[:, 0]):
        r = ref[ref[:, 0] == frame]
        o = ours[ours[:, 0] == frame]
        if len(o) == 0:
            continue
        same_scale = np.isclose(r[:, None, 6], o[None, :, 6], atol=1e-3)
        dist = np.abs(r[:, None, 1:3] - o[None, :, 1:3]).max(-1)
        dist = np.where(same_scale, dist, np.inf)
        j = dist.argmin(1)
        ok = dist[np.arange(len(r)), j] <= tol
        matched += int(ok.sum())
        for k in DESCRIPTORS:
            a, b = r[ok][:, cols[k]], o[j[ok]][:, cols[k]]
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
            sims[k].extend(cos.tolist())
    return {"count_ours": len(ours), "count_ref": len(ref), "count_ratio": len(ours) / max(len(ref), 1),
            "matched": matched,
            "cos": {k: float(np.median(v)) if v else float("nan") for k, v in sims.items()}}
