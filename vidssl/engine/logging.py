"""Training logs: ``metrics.jsonl`` (one JSON object per line) and TensorBoard (``tb/``).

A line is either a step record ``{"step", "epoch", "loss", "lr", "clips_per_s", ...}``
(``step`` = optimiser steps done; ``epoch`` fractional) or an event
``{"event": "bad_video", "step", "path"}``. On resume, the records written after the
checkpoint by the interrupted run are dropped, so the file reads as one run.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from vidssl import distributed as dist


class MetricsLogger:
    """Append-only metrics of one run (create it on the main process only).

    Args:
        run_dir: the run directory (``metrics.jsonl`` and ``tb/`` go there).
        resume_step: steps done at the checkpoint being resumed; lines and
            TensorBoard events after it are discarded. ``None`` starts afresh
            (an existing ``metrics.jsonl`` is emptied).
        tensorboard: also write TensorBoard scalars under ``tb/``.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_step is not None and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut by the interruption
                    continue
                if rec.get("step", 0) <= resume_step:
                    kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))
        self._file = open(self.path, "a")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops the interrupted run's events after the checkpoint (all of an old run's
            # events when starting afresh)
            self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step or 0)

    def log(self, step: int, values: dict, prefix: str = "train") -> None:
        """One step record; numeric values also go to TensorBoard as ``prefix/key``."""
        rec = {"step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        if self.writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch":
                    self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def event(self, step: int, kind: str, **fields) -> None:
        """A non-metric record, e.g. ``event(step, "bad_video", path=...)``."""
        rec = {"event": kind, "step": int(step), **{k: _jsonable(v) for k, v in fields.items()}}
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()

    def flush(self) -> None:
        self._file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _jsonable(v):
    if hasattr(v, "item"):  # 0-d tensors and numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf
    return v


def say(msg: str) -> None:
    """A one-line message of the run on stderr, from the main process only."""
    if dist.is_main():
        print(f"vidssl: {msg}", file=sys.stderr, flush=True)
