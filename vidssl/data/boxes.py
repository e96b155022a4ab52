"""Keyframe boxes of spatio-temporal action detection, in AVA's CSV layout.

AVA (Gu et al. 2018; large-scale study Sec. 4.6, App. B.3) annotates one keyframe per
second with a box per person and the person's actions. Its CSVs have no header and one
row per (box, action)::

    video_id, timestamp, x1, y1, x2, y2, action[, person_id]

``timestamp`` in seconds from the start of the video (the keyframe is the frame at
``round(timestamp * fps)``), the corners normalised to [0, 1] by the frame's width and
height. A row's ``action`` is a class name or an integer id, or several joined by ``;``
(:mod:`vidssl.data.multilabel`; empty: a box without an action). Rows of the same box
are grouped into one box with a label set: the same video, timestamp and person id, or,
without a person id, the same video, timestamp and corners. A header line (its timestamp
field not a number) is skipped. (AVA's raw timestamps count from the start of the movie,
902 s .. 1798 s; subtract 900 when the videos are the cut 15-minute segments.)

``video_id`` names a video of the manifest: its file stem (AVA's YouTube id), its path
relative to the CSV's folder, or its absolute path.

:func:`load_boxes` checks everything and raises :class:`ManifestError` with one line naming
the first offenders: malformed rows, unknown videos, boxes outside the frame or empty
(x2 <= x1, y2 <= y1), unknown class names, timestamps outside their video, and one person
with two boxes at one keyframe. :func:`write_boxes` writes the layout (no header, as AVA).
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from vidssl.data.multilabel import multi_hot, parse_label_sets
from vidssl.errors import ManifestError, ManifestNotFoundError
from vidssl.fileio import atomic_write_text

_MAX_LISTED = 5  # offenders named in an error message
_EPS = 1e-6  # tolerance on the corners (CSV rounding) and on grouping rows of one box
BOXES_SUFFIX = "_boxes.csv"


@dataclass
class BoxTable:
    """The boxes of a CSV, one entry per box (its rows grouped), sorted by video, time, first row.

    ``video``: int64 ``[M]`` manifest index; ``time``: float64 ``[M]`` seconds; ``boxes``:
    float32 ``[M, 4]`` (x1, y1, x2, y2) in [0, 1]; ``label_sets``: the sorted labels of each
    box; ``person``: the person id ("" when the CSV has none); ``classes``: class names
    (integer ids become ``"0" .. "K-1"``); ``source``: the CSV.
    """

    video: np.ndarray
    time: np.ndarray
    boxes: np.ndarray
    label_sets: list[list[int]]
    person: list[str]
    classes: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.video)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def targets(self) -> np.ndarray:
        """float32 ``[M, K]``: 1 for each label of each box."""
        return multi_hot(self.label_sets, self.num_classes)

    def keyframes(self) -> list[tuple[int, float, np.ndarray]]:
        """``(video, seconds, box indices)`` of every keyframe, in table order."""
        out: list[tuple[int, float, list[int]]] = []
        for i, (v, t) in enumerate(zip(self.video.tolist(), self.time.tolist())):
            if out and out[-1][0] == v and abs(out[-1][1] - t) < _EPS:
                out[-1][2].append(i)
            else:
                out.append((v, t, [i]))
        return [(v, t, np.asarray(rows, np.int64)) for v, t, rows in out]


def boxes_path(manifest_csv: str | os.PathLike) -> Path:
    """The boxes CSV that goes with a manifest CSV: ``train.csv`` -> ``train_boxes.csv`` beside it."""
    p = Path(manifest_csv)
    return p.with_name(p.stem + BOXES_SUFFIX)


def write_boxes(path: str | os.PathLike, rows: Sequence[Sequence]) -> Path:
    """Write rows ``(video, seconds, x1, y1, x2, y2, label(s)[, person])`` in AVA's layout (no
    header; corners with 4 decimals, at least as fine as AVA's 3), atomically."""
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    for r in rows:
        video, t, x1, y1, x2, y2, *rest = r
        w.writerow([video, f"{float(t):.3f}", *(f"{float(v):.4f}" for v in (x1, y1, x2, y2)), *rest])
    return atomic_write_text(Path(path), text.getvalue())


def _listed(items: list[str], what: str, where: str, total: int) -> ManifestError:
    """One line: ``where: n of total what: a, b, ... and k more``."""
    more = f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ManifestError(f"{where}: {len(items)} of {total} {what}: {', '.join(items[:_MAX_LISTED])}{more}")


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the data rows; blank lines and a header line skipped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [(n, [c.strip() for c in r]) for n, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    if rows and len(rows[0][1]) > 1 and not _is_number(rows[0][1][1]):
        rows = rows[1:]  # a header
    if not rows:
        raise ManifestError(f"{path}: the boxes CSV lists no boxes")
    return rows


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _video_lookup(paths: Sequence[str], base: Path) -> dict[str, int]:
    """Names a boxes CSV may use for each manifest video: absolute path, path relative to the
    CSV's folder, file stem (stems shared by two videos are left out)."""
    lookup: dict[str, int] = {}
    stems: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        lookup[str(Path(p))] = i
        try:
            lookup[os.path.relpath(p, base)] = i
        except ValueError:  # another drive (Windows)
            pass
        stems.setdefault(Path(p).stem, []).append(i)
    for stem, idx in stems.items():
        if len(idx) == 1:
            lookup.setdefault(stem, idx[0])
    return lookup


def load_boxes(path: str | os.PathLike, manifest, classes: Optional[Sequence[str]] = None,
               durations: Optional[dict[int, tuple[int, float]]] = None, backend: str = "pyav") -> BoxTable:
    """Read and check the boxes CSV ``path`` against ``manifest`` (a :class:`Manifest`).

    ``classes``: the class list to number the labels with (the training table's, for a test
    table: names outside it are errors); default: the names of the CSV in sorted order, or
    ``0 .. max`` for integer ids. ``durations``: ``{video index: (num_frames, fps)}``;
    default: probed (:func:`vidssl.data.video.probe`) for the videos the CSV names.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestNotFoundError(f"boxes CSV {path} does not exist")
    where = str(path)
    rows = _read_rows(path)
    total = len(rows)
    bad = [f"line {n} ({len(r)} fields)" for n, r in rows if len(r) not in (7, 8)]
    if bad:
        raise _listed(bad, "rows are not 'video, timestamp, x1, y1, x2, y2, label[, person]'", where, total)
    bad = [f"line {n}" for n, r in rows if not all(_is_number(v) for v in r[1:6])]
    if bad:
        raise _listed(bad, "rows have a timestamp or corner that is not a number", where, total)

    lookup = _video_lookup(manifest.paths, path.parent)
    bad = [f"{r[0]!r} (line {n})" for n, r in rows if r[0] not in lookup]
    if bad:
        raise _listed(bad, f"rows name videos not in the manifest {manifest.source}", where, total)
    video = np.array([lookup[r[0]] for _, r in rows], np.int64)
    time = np.array([float(r[1]) for _, r in rows], np.float64)
    corners = np.array([[float(v) for v in r[2:6]] for _, r in rows], np.float64)

    x1, y1, x2, y2 = corners.T
    outside = (np.minimum(x1, y1) < -_EPS) | (np.maximum(x2, y2) > 1 + _EPS)
    empty = (x2 <= x1) | (y2 <= y1)
    bad = [f"line {n} ({', '.join(r[2:6])})" for (n, r), o, e in zip(rows, outside, empty) if o or e]
    if bad:
        raise _listed(bad, "boxes are outside the frame [0, 1] or empty (x2 <= x1 or y2 <= y1)", where, total)
    corners = np.clip(corners, 0.0, 1.0)

    label_entries = [r[6] for _, r in rows]
    sets, names = parse_label_sets(label_entries, f"{where} (labels)", classes=classes)
    if not names:  # integer ids: 0 .. max, named by their numbers
        names = [str(i) for i in range(max((max(s) for s in sets if s), default=-1) + 1)]

    if durations is None:
        from vidssl.data.video import probe

        durations = {}
        for v in sorted(set(video.tolist())):
            info = probe(manifest.paths[v], backend)
            durations[v] = (info.num_frames, info.fps)
    bad = []
    for (n, r), v, t in zip(rows, video.tolist(), time.tolist()):
        frames, fps = durations[v]
        if t < 0 or round(t * fps) > frames - 1:
            bad.append(f"line {n}: {r[0]!r} at {t:g} s (the video lasts {(frames - 1) / fps:.2f} s)")
    if bad:
        raise _listed(bad, "rows have timestamps outside their video", where, total)

    return _group(rows, video, time, corners, sets, names, where)


def _group(rows, video, time, corners, sets, names, where) -> BoxTable:
    """One entry per box: rows of the same video, time and person id (or corners) merged."""
    person = [r[7] if len(r) == 8 else "" for _, r in rows]
    keys: dict[tuple, int] = {}
    first: list[int] = []
    merged: list[set[int]] = []
    conflicts = []
    for i in range(len(rows)):
        t = round(time[i] / _EPS)
        key = (video[i], t, person[i]) if person[i] else (video[i], t, *np.round(corners[i] / _EPS).astype(np.int64))
        j = keys.get(key)
        if j is None:
            keys[key] = len(first)
            first.append(i)
            merged.append(set(sets[i]))
            continue
        if np.abs(corners[first[j]] - corners[i]).max() > _EPS:
            conflicts.append(f"person {person[i]!r} of {rows[i][1][0]!r} at {time[i]:g} s (lines {rows[first[j]][0]} "
                             f"and {rows[i][0]})")
        merged[j] |= set(sets[i])
    if conflicts:
        raise _listed(conflicts, "rows give one person two boxes at one keyframe", where, len(rows))
    order = sorted(range(len(first)), key=lambda j: (video[first[j]], time[first[j]], first[j]))
    idx = np.array([first[j] for j in order], np.int64)
    return BoxTable(video[idx].copy(), time[idx].copy(), corners[idx].astype(np.float32),
                    [sorted(merged[j]) for j in order], [person[i] for i in idx.tolist()], list(names), where)
