"""Video CPC's prediction accuracy against the step k (CPC paper Fig. 3): how often the
prediction of z_{t+k} from c_t scores its own segment above every other candidate.

Read from a run's ``metrics.jsonl``, where the ``cpc`` method logs ``acc_k1 .. acc_kK``
(training batches); the figure of a run is the mean over the last ``tail`` fraction of
its logged rows (the end of training, as in the paper's curves).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from vidssl.errors import ConfigError
from vidssl.viz.figures import pyplot, save_figure

_KEY = re.compile(r"acc_k(\d+)$")


def step_accuracy(run_dir: str | Path, tail: float = 0.1) -> dict[int, float]:
    """{k: mean accuracy} over the last ``tail`` fraction (at least one) of the logged rows."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no metrics.jsonl (expected a run directory of `vidssl pretrain`)")
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if any(_KEY.match(k) for k in row):
            rows.append(row)
    if not rows:
        raise ConfigError(f"{run_dir}: metrics.jsonl has no acc_k* columns (not a video CPC run)")
    if not 0 < tail <= 1:
        raise ConfigError(f"tail must be in (0, 1], got {tail}")
    last = rows[-max(1, round(len(rows) * tail)):]
    steps = sorted({int(m.group(1)) for r in last for k in r if (m := _KEY.match(k))})
    return {k: sum(r[f"acc_k{k}"] for r in last if f"acc_k{k}" in r)
            / sum(1 for r in last if f"acc_k{k}" in r) for k in steps}


def plot_step_accuracy(curves: dict[str, dict[int, float]], out: str | Path, title: str = "") -> Path:
    """One line per run: accuracy (y) against k (x)."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, acc in curves.items():
        ks = sorted(acc)
        ax.plot(ks, [acc[k] for k in ks], marker="o", label=name)
    ax.set_xlabel("k (predicting $z_{t+k}$ from $c_t$)")
    ax.set_ylabel("prediction accuracy")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, out)
