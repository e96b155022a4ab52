"""Figures of the claims benchmark: one small JSON per run, and the statistics of a claim.

Every run of ``bench_claims.py`` (a pretraining, a random-init probe, an IDT encoding) is
stored as ``docs/results/claims/<run id>.json`` once it has finished, so the table can be
completed over several sittings and rebuilt by anyone from the files in the repository:
a run whose file exists is not run again.

A claim "A > B" is measured at several seeds; at each seed the paired difference A - B
(the same seed's data order and initialisation on both sides) gives its sign. The
verdict (:func:`verdict`):

- **holds**: at least ``MIN_SEEDS`` seeds and A - B > 0 at every seed;
- **does not hold**: at least ``MIN_SEEDS`` seeds and the mean difference <= 0;
- **inconclusive**: fewer seeds, or a positive mean with the sign changing across seeds.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Optional

from vidssl.fileio import atomic_write_text

STORE = Path(__file__).resolve().parent.parent / "docs" / "results" / "claims"
MIN_SEEDS = 3


class RunStore:
    """``<root>/<run id>.json`` for every finished run."""

    def __init__(self, root: str | Path = STORE):
        self.root = Path(root)

    def path(self, run_id: str) -> Path:
        return self.root / f"{run_id}.json"

    def get(self, run_id: str) -> Optional[dict]:
        try:
            return json.loads(self.path(run_id).read_text())
        except (OSError, ValueError):
            return None

    def put(self, run_id: str, record: dict) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(self.path(run_id), json.dumps({"id": run_id, **record}, indent=1, sort_keys=True)
                                 + "\n")

    def once(self, run_id: str, make, tag: str = "claims") -> dict:
        """The stored record of ``run_id``, or ``make()`` (a dict with ``figures``) timed
        (``minutes``), stored and printed."""
        import time

        rec = self.get(run_id)
        if rec is not None:
            print(f"[{tag}] {run_id}: stored", flush=True)
            return rec
        t0 = time.time()
        rec = make()
        rec["minutes"] = round((time.time() - t0) / 60, 2)
        self.put(run_id, rec)
        print(f"[{tag}] {run_id}: {json.dumps(rec['figures'])}  ({rec['minutes']:.1f} min)", flush=True)
        return rec

    def all(self) -> dict[str, dict]:
        out = {}
        for p in sorted(self.root.glob("*.json")):
            rec = self.get(p.stem)
            if rec is not None:
                out[p.stem] = rec
        return out


def by_seed(records: dict[str, dict], prefix: str, get) -> dict[int, float]:
    """{seed: get(record)} over the records ``<prefix>_s<seed>``."""
    out = {}
    for run_id, rec in records.items():
        head, _, seed = run_id.rpartition("_s")
        if head == prefix and seed.isdigit():
            try:
                out[int(seed)] = float(get(rec))
            except (KeyError, TypeError):
                continue
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN for none)."""
    if not values:
        return math.nan, math.nan
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values: list[float], digits: int = 3) -> str:
    """``mean ± std (n)``, or a dash without values."""
    if not values:
        return "–"
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f} ({len(values)})" if len(values) > 1 else f"{m:.{digits}f} (1)"


def paired(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    """A - B at every seed that both sides have."""
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def verdict(diffs: dict[int, float], min_seeds: int = MIN_SEEDS) -> str:
    """holds / does not hold / inconclusive for the claim A > B (see the module docstring)."""
    values = list(diffs.values())
    if len(values) < min_seeds:
        return f"inconclusive ({len(values)} of {min_seeds} seeds)"
    if all(d > 0 for d in values):
        return "holds"
    if statistics.mean(values) <= 0:
        return "does not hold"
    return "inconclusive (sign changes across seeds)"
