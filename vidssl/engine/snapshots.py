"""Epoch snapshots: ``checkpoints/epoch_0003.pt`` beside ``last.pt`` (``train.keep_snapshots``).

``train.keep_snapshots``: ``0`` (the default) keeps no snapshot, only ``last.pt`` (and
``best.pt`` with a validation set); ``N > 0`` keeps the checkpoints of the last N
completed epochs, older ones deleted; ``null`` keeps every epoch's. A snapshot is the
whole checkpoint of that epoch's end (``last.pt`` as it was then), so it can be
evaluated (``--checkpoint .../epoch_0003.pt``) or copied over ``last.pt`` to resume from
there. It is a hard link to ``last.pt`` when the file system allows (no second write of
the weights: ``last.pt`` is replaced by a rename, so the snapshot keeps its data), else a
copy written atomically.

The number in the name is the count of completed epochs (``epoch_0001.pt``: after the
first epoch). Snapshots of later epochs than the run's (left by a run that started over,
``--no-resume``) are deleted at the first snapshot of the new run.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from vidssl.fileio import atomic_write

_NAME = re.compile(r"^epoch_(\d+)\.pt$")


def snapshot_path(folder: str | Path, epoch: int) -> Path:
    """``folder / epoch_{epoch:04d}.pt``."""
    return Path(folder) / f"epoch_{epoch:04d}.pt"


def snapshots(folder: str | Path) -> dict[int, Path]:
    """``{epoch: path}`` of the snapshots in ``folder``, by epoch."""
    found = {}
    for p in Path(folder).glob("epoch_*.pt"):
        m = _NAME.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def save_snapshot(last: str | Path, epoch: int) -> Path:
    """The snapshot of epoch ``epoch``: ``last`` (just written) linked, or copied, beside it."""
    last = Path(last)
    dest = snapshot_path(last.parent, epoch)
    if dest.exists():
        dest.unlink()
    try:
        os.link(last, dest)
    except OSError:  # a file system without hard links
        with open(last, "rb") as src:
            atomic_write(dest, lambda f: shutil.copyfileobj(src, f))
    return dest


def prune_snapshots(folder: str | Path, keep: int | None, epoch: int) -> list[Path]:
    """Delete the snapshots past ``epoch`` and, with ``keep`` (an int > 0), all but the
    newest ``keep``; returns the deleted paths. ``keep=None`` keeps every snapshot up to ``epoch``."""
    found = snapshots(folder)
    doomed = [p for e, p in found.items() if e > epoch]
    kept = [p for e, p in found.items() if e <= epoch]
    if keep is not None and keep > 0:
        doomed += kept[:-keep]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def write_snapshot(last: str | Path, epoch: int, keep: int | None) -> Path | None:
    """After the checkpoint of epoch ``epoch``: its snapshot and the pruning that
    ``train.keep_snapshots=keep`` asks for; None (nothing written) for ``keep=0``."""
    if keep == 0:
        return None
    dest = save_snapshot(last, epoch)
    prune_snapshots(Path(last).parent, keep, epoch)
    return dest
