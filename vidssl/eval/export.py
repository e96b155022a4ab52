"""One embedding per video of a manifest, written to disk (``vidssl features``).

``OUT.npy``: float32 ``[N, D]``, row i the embedding of video i of the manifest (the mean
over its test-time views, :meth:`vidssl.eval.encoder.Encoder.embed`); beside it
``OUT.csv`` (same stem), one row per video in the same order::

    path,label,class,decoded,<the manifest's other columns>

``path`` absolute; ``label`` the integer label ('' when none); ``class`` its name (only
when the manifest names its classes); ``decoded`` 1, or 0 for a video that cannot be
decoded (its row of the array is NaN). A multi-label manifest has an empty ``label``
and no ``class``, and its label sets in a ``labels`` column (``;``-joined) after ``decoded``.
Other columns of the manifest follow, except those named like the first four. Both files
are written atomically.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from vidssl.errors import ConfigError
from vidssl.fileio import atomic_write, atomic_write_text

FIXED = ("path", "label", "class", "decoded")


def labels_path(out: str | os.PathLike) -> Path:
    """The table beside ``out``: ``feats.npy`` -> ``feats.csv``."""
    out = Path(out)
    table = out.with_suffix(".csv")
    if table == out:
        raise ConfigError(f"--out {out}: the features go to a .npy file (the labels go beside it as .csv)")
    return table


def export_features(encoder, manifest, out: str | os.PathLike, *, workers: int = 0, batch_size: int | None = None,
                    progress: bool = False) -> dict:
    """Embed every video of ``manifest`` with ``encoder`` and write ``out`` (.npy) and its table.

    Returns ``{"features": path, "labels": path, "videos": N, "dim": D, "failed": [paths]}``.
    """
    out = Path(out)
    table = labels_path(out)
    emb, decoded = encoder.embed_manifest(manifest, workers=workers, batch_size=batch_size, progress=progress)
    array = emb.numpy().astype(np.float32, copy=False)
    atomic_write(out, lambda f: np.save(f, array))
    atomic_write_text(table, label_table(manifest, decoded.tolist()))
    return {"features": str(out), "labels": str(table), "videos": int(array.shape[0]), "dim": int(array.shape[1]),
            "failed": [p for p, ok in zip(manifest.paths, decoded.tolist()) if not ok]}


def label_table(manifest, decoded: list[bool]) -> str:
    """The CSV text of the table (see the module docstring)."""
    sets = manifest.raw_labels() if manifest.label_sets is not None else None
    named = bool(manifest.classes) and sets is None
    extra = [c for c in manifest.columns if c not in FIXED and not (sets is not None and c == "labels")]
    header = ["path", "label", *(["class"] if named else []), "decoded", *(["labels"] if sets is not None else []),
              *extra]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i, (path, y) in enumerate(zip(manifest.paths, manifest.labels)):
        row = [path, str(y) if y >= 0 else ""]
        if named:
            row.append(manifest.classes[y] if y >= 0 else "")
        row.append("1" if decoded[i] else "0")
        if sets is not None:
            row.append(sets[i])
        w.writerow(row + [manifest.columns[c][i] for c in extra])
    return buf.getvalue()
