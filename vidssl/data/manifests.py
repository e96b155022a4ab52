"""Manifests: which videos a run uses, and their labels.

A manifest is read from one of six sources (``format="auto"`` picks one of the first five):

- ``csv``: a CSV with a header, a ``path`` column (relative to the CSV's folder, or
  absolute) and an optional label column (integer or class name); every other
  column is kept raw in :attr:`Manifest.columns` (e.g. ``appearance``).
- ``ucf101``: the official split folder (``classInd.txt``, ``trainlist0N.txt``,
  ``testlist0N.txt``); the test lists carry no label, so the label comes from the
  class folder through ``classInd.txt``.
- ``hmdb51``: the official split folder (``<class>_test_split<N>.txt``; each line
  ``<video file> <0|1|2>`` with 1 = train, 2 = test, 0 = unused); videos at
  ``root/<class>/<file>``.
- ``kinetics``: the official CSVs (``label, youtube_id, time_start, time_end,
  split``); files named ``<youtube_id>_<start:06d>_<end:06d>.mp4`` and looked up
  under ``root/<label>/``, ``root/`` or ``root/<split>/<label>/``.
- ``folder``: every video below a folder (recursive); the class is the first
  sub-folder when there is one. Without video files, every folder of image frames
  is a video (for the ``frames`` backend).
- ``images``: every JPEG/PNG image below a folder (recursive), each one a video of its
  own (for the ``image`` backend: static-image videos, VIE Sec. 4); the class is the
  first sub-folder when there is one. A CSV of image paths works as well (``csv``).

Class names are mapped to integers in sorted order of the names (``classInd.txt``
order for UCF101); -1 means "no label".

A CSV label column named ``labels``, or one with a ``;`` in an entry,
holds several labels per video (``sit;drink``, ``3;17``, empty = none; Charades-style
multi-label classification, :mod:`vidssl.data.multilabel`): the manifest keeps them in
:attr:`Manifest.label_sets` and its single ``labels`` are all -1. With the default
``label_column="label"``, a CSV without a ``label`` column but with a ``labels`` column
is read as multi-label. ``builtin:SPLIT`` specs (the built-in
dataset) are resolved one level up, by :func:`vidssl.data.builtin.open_manifest`.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from vidssl.data.multilabel import (LABEL_SETS_COLUMN, format_label_set, is_label_sets_column,
                                    parse_label_sets)
from vidssl.errors import ManifestError, ManifestNotFoundError
from vidssl.fileio import atomic_write

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
FORMATS = ("auto", "csv", "ucf101", "hmdb51", "kinetics", "folder", "images")
_MAX_LISTED = 5  # offenders named in an error message


@dataclass
class Manifest:
    """The videos of a dataset split.

    ``paths``: absolute paths (video files, or frame folders for the ``frames``
    backend); ``labels``: one int per video, -1 = none; ``classes``: the name of each
    label (empty when the labels were integers); ``columns``: every other column,
    raw strings, one per video; ``source``: where the manifest came from;
    ``label_column``: the column the labels were read from (used by :meth:`relabel`);
    ``label_sets``: for a multi-label manifest, the sorted labels of each video (``[]`` =
    none; then every entry of ``labels`` is -1), else None.
    """

    paths: list[str]
    labels: list[int]
    classes: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    label_column: str = "label"
    label_sets: Optional[list[list[int]]] = None

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.paths):
            raise ManifestError(f"{self.source}: {len(self.paths)} paths but {len(self.labels)} labels")
        if self.label_sets is not None and len(self.label_sets) != len(self.paths):
            raise ManifestError(f"{self.source}: {len(self.paths)} paths but {len(self.label_sets)} label sets")
        for name, values in self.columns.items():
            if len(values) != len(self.paths):
                raise ManifestError(f"{self.source}: column {name!r} has {len(values)} values for {len(self.paths)} paths")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def multi_label(self) -> bool:
        """Whether the videos carry label sets (:attr:`label_sets`) instead of one label each."""
        return self.label_sets is not None

    @property
    def num_classes(self) -> int:
        """len(classes), or max label + 1 when the labels were integers (of the label sets
        for a multi-label manifest)."""
        if self.classes:
            return len(self.classes)
        if self.label_sets is not None:
            return max((max(s) for s in self.label_sets if s), default=-1) + 1
        return max(self.labels, default=-1) + 1

    def with_classes(self, classes: Sequence[str]) -> "Manifest":
        """This multi-label manifest with its labels numbered as in ``classes`` (the class list of
        another split; integer labels are the names ``"0"``, ``"1"``, ...). A label not in
        ``classes`` is a :class:`ManifestError` naming the first ones."""
        if self.label_sets is None:
            raise ManifestError(f"{self.source}: with_classes is for multi-label manifests")
        names = self.classes or [str(i) for i in range(self.num_classes)]
        raw = [format_label_set(s, names) for s in self.label_sets]
        sets, classes = parse_label_sets(raw, f"{self.source} column {self.label_column!r}", classes=list(classes))
        return Manifest(list(self.paths), list(self.labels), classes, {k: list(v) for k, v in self.columns.items()},
                        self.source, self.label_column, sets)

    def subset(self, indices: Iterable[int]) -> "Manifest":
        """The videos at ``indices`` (in that order); classes are kept as they are."""
        idx = [int(i) for i in indices]
        return Manifest(
            paths=[self.paths[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            classes=list(self.classes),
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
            source=f"{self.source} (subset of {len(idx)})",
            label_column=self.label_column,
            label_sets=None if self.label_sets is None else [list(self.label_sets[i]) for i in idx],
        )

    def random_subset(self, subset: int | float, seed: int = 0) -> "Manifest":
        """``subset`` (a fraction in (0, 1), or a number of videos) of the videos, drawn with
        ``seed``, in manifest order. The draws are nested: for one seed the first k videos of
        one permutation, so a smaller subset lies inside every larger one (data-scale curves)."""
        n = len(self)
        k = int(round(subset * n)) if isinstance(subset, float) else int(subset)
        if not 1 <= k <= n:
            raise ManifestError(f"{self.source}: a subset of {subset} is {k} of its {n} videos "
                                f"(need between 1 and {n})")
        import numpy as np

        idx = sorted(np.random.default_rng(seed).permutation(n)[:k].tolist())
        out = self.subset(idx)
        out.source = f"{self.source} ({k} of {n} videos, seed {seed})"
        return out

    def binned(self, bins: int) -> "Manifest":
        """Every video cut into ``bins`` equal parts in time, each one a row (a video) of its
        own (VIE Sec. 5, Table 3): rows ``i * bins + b``, the ``bin`` column ``"b/bins"``
        (the dataset samples clips inside the bin), the video's label and columns."""
        if bins < 1:
            raise ManifestError(f"bins must be >= 1, got {bins}")
        if "bin" in self.columns:
            raise ManifestError(f"{self.source}: already has a 'bin' column")
        rows = [i for i in range(len(self)) for _ in range(bins)]
        out = self.subset(rows)
        out.columns["bin"] = [f"{b}/{bins}" for _ in range(len(self)) for b in range(bins)]
        out.source = f"{self.source} ({bins} bins per video)"
        return out

    def raw_labels(self) -> list[str]:
        """The labels as they would be written in a CSV ('' for none; ``;``-joined label sets)."""
        if self.label_sets is not None:
            return [format_label_set(s, self.classes) for s in self.label_sets]
        if self.classes:
            return [self.classes[y] if y >= 0 else "" for y in self.labels]
        return [str(y) if y >= 0 else "" for y in self.labels]

    def relabel(self, column: str) -> "Manifest":
        """A manifest whose labels come from ``column`` (the old labels move to the columns)."""
        if column == self.label_column:
            sets = None if self.label_sets is None else [list(s) for s in self.label_sets]
            return Manifest(list(self.paths), list(self.labels), list(self.classes),
                            {k: list(v) for k, v in self.columns.items()}, self.source, self.label_column, sets)
        if column not in self.columns:
            raise ManifestError(
                f"{self.source}: no column {column!r} to take labels from "
                f"(columns: {', '.join([self.label_column, *self.columns]) or 'none'})"
            )
        labels, classes, sets = read_label_column(column, self.columns[column], f"{self.source} column {column!r}")
        columns = {k: list(v) for k, v in self.columns.items() if k != column}
        columns[self.label_column] = self.raw_labels()
        return Manifest(list(self.paths), labels, classes, columns, self.source, column, sets)


# ----------------------------------------------------------------------------- helpers


def parse_labels(values: Sequence[str], where: str = "manifest",
                 classes: Optional[Sequence[str]] = None) -> tuple[list[int], list[str]]:
    """Raw label strings -> (ints, class names).

    Empty strings are -1. When every non-empty value is an integer, the integers are
    the labels and there are no class names; otherwise every value is a class name,
    numbered in sorted order (or in the order of ``classes`` when given).
    """
    values = [str(v).strip() for v in values]
    present = [v for v in values if v != ""]
    if not present:
        return [-1] * len(values), list(classes or [])
    if classes is None and all(re.fullmatch(r"[+-]?\d+", v) for v in present):
        ints = [int(v) if v != "" else -1 for v in values]
        bad = [v for v in ints if v < -1]
        if bad:
            raise ManifestError(f"{where}: negative labels {sorted(set(bad))[:_MAX_LISTED]} (use -1 or empty for none)")
        return ints, []
    names = list(classes) if classes is not None else sorted(set(present))
    lookup = {n: i for i, n in enumerate(names)}
    unknown = sorted({v for v in present if v not in lookup})
    if unknown:
        raise ManifestError(f"{where}: {len(unknown)} unknown class names, e.g. {', '.join(unknown[:_MAX_LISTED])}")
    return [lookup[v] if v != "" else -1 for v in values], names


def read_label_column(name: str, values: Sequence[str], where: str
                      ) -> tuple[list[int], list[str], Optional[list[list[int]]]]:
    """A label column -> (labels, classes, label sets): label sets when the column holds them
    (:func:`vidssl.data.multilabel.is_label_sets_column`; then every label is -1), else
    :func:`parse_labels` and None."""
    if is_label_sets_column(name, values):
        sets, classes = parse_label_sets(values, where)
        return [-1] * len(values), classes, sets
    labels, classes = parse_labels(values, where)
    return labels, classes, None


def _offenders(items: Sequence[str], what: str, where: str, total: int) -> ManifestError:
    listed = "\n  ".join(items[:_MAX_LISTED])
    more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ManifestError(f"{where}: {len(items)} of {total} {what}:\n  {listed}{more}")


def _existing(path: Path) -> Path:
    """``path``, or the frame folder with the same stem when only that exists."""
    if path.exists():
        return path
    if path.suffix.lower() in VIDEO_EXTENSIONS and path.with_suffix("").is_dir():
        return path.with_suffix("")
    return path


def _finish(paths: list[Path], labels: list[int], classes: list[str], columns: dict, source: str,
            label_column: str, check_files: bool, label_sets: Optional[list[list[int]]] = None) -> Manifest:
    if not paths:
        raise ManifestError(f"{source}: the manifest lists no videos")
    resolved = [_existing(p) for p in paths]
    if check_files:
        missing = [str(p) for p in resolved if not p.exists()]
        if missing:
            raise _offenders(missing, "videos are missing", source, len(resolved))
    return Manifest([str(p) for p in resolved], labels, classes, columns, source, label_column, label_sets)


def _absolute(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value.strip()))
    return p if p.is_absolute() else (base / p)


def _lines(path: Path) -> list[str]:
    """Non-empty stripped lines (the official lists use CRLF line ends)."""
    return [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


# ----------------------------------------------------------------------------- formats


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v if v is not None else "") for k, v in r.items()} for r in reader]
    return header, rows


def _load_csv(path: Path, label_column: str, check_files: bool) -> Manifest:
    header, rows = _read_csv(path)
    if label_column == "label" and "label" not in header and LABEL_SETS_COLUMN in header:
        label_column = LABEL_SETS_COLUMN  # a multi-label manifest
    if "path" not in header:
        raise ManifestError(f"{path}: a manifest CSV needs a 'path' column (found: {', '.join(header) or 'no header'})")
    if label_column not in header and label_column != "label":
        raise ManifestError(f"{path}: no label column {label_column!r} (columns: {', '.join(header)})")
    empty = [str(i + 2) for i, r in enumerate(rows) if not r.get("path", "").strip()]
    if empty:
        raise _offenders([f"line {n}" for n in empty], "rows have an empty path", str(path), len(rows))
    base = path.parent
    paths = [_absolute(base, r["path"]) for r in rows]
    raw = [r.get(label_column, "") for r in rows]
    labels, classes, sets = read_label_column(label_column, raw, f"{path} column {label_column!r}")
    columns = {h: [r.get(h, "") for r in rows] for h in header if h not in ("path", label_column)}
    return _finish(paths, labels, classes, columns, str(path), label_column, check_files, sets)


def _load_kinetics(path: Path, root: Optional[Path], label_column: str, check_files: bool) -> Manifest:
    header, rows = _read_csv(path)
    need = [c for c in ("youtube_id", "time_start", "time_end") if c not in header]
    if need:
        raise ManifestError(f"{path}: a Kinetics CSV needs columns youtube_id, time_start, time_end (missing: {', '.join(need)})")
    root = root or path.parent
    paths = []
    for i, r in enumerate(rows):
        try:
            start, end = int(float(r["time_start"])), int(float(r["time_end"]))
        except ValueError:
            raise ManifestError(f"{path} line {i + 2}: bad time_start/time_end {r['time_start']!r}, {r['time_end']!r}") from None
        stem = f"{r['youtube_id'].strip()}_{start:06d}_{end:06d}"
        label, split = r.get("label", "").strip(), r.get("split", "").strip()
        folders = []
        for name in dict.fromkeys([label, label.replace(" ", "_")]):  # downloaders write either spelling
            if name:
                folders.append(root / name)
        folders.append(root)
        if split:
            folders += [root / split / f.name for f in folders[:-1]] + [root / split]
        candidates = [d / (stem + ext) for d in folders for ext in VIDEO_EXTENSIONS]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:  # the frames backend: a folder named like the clip
            found = next((d / stem for d in folders if (d / stem).is_dir()), candidates[0])
        paths.append(found)
    if label_column not in header and label_column != "label":
        raise ManifestError(f"{path}: no label column {label_column!r} (columns: {', '.join(header)})")
    labels, classes = parse_labels([r.get(label_column, "") for r in rows], f"{path} column {label_column!r}")
    columns = {h: [r.get(h, "") for r in rows] for h in header if h != label_column}
    return _finish(paths, labels, classes, columns, str(path), label_column, check_files)


def _ucf_classes(folder: Path) -> list[str]:
    ind = folder / "classInd.txt"
    if not ind.is_file():
        raise ManifestError(f"{folder}: no classInd.txt (the UCF101 split folder holds classInd.txt, trainlist0N.txt, testlist0N.txt)")
    pairs = []
    for ln in _lines(ind):
        parts = ln.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ManifestError(f"{ind}: bad line {ln!r} (expected '<number> <class name>')")
        pairs.append((int(parts[0]), parts[1]))
    return [name for _, name in sorted(pairs)]


def _load_ucf101(folder: Path, root: Optional[Path], split: int, subset: str, check_files: bool) -> Manifest:
    classes = _ucf_classes(folder)
    lookup = {c.lower(): i for i, c in enumerate(classes)}  # case-insensitive: 'HandStandPushups' vs 'HandstandPushups'
    lst = folder / f"{'trainlist' if subset == 'train' else 'testlist'}{split:02d}.txt"
    if not lst.is_file():
        raise ManifestError(f"{folder}: no split file {lst.name} (split={split}, subset={subset})")
    root = root or folder
    paths, labels, unknown = [], [], []
    for ln in _lines(lst):
        rel = ln.split()[0]
        cls = rel.replace("\\", "/").split("/")[0]
        if cls.lower() not in lookup:
            unknown.append(rel)
            continue
        paths.append(root / rel)
        labels.append(lookup[cls.lower()])
    if unknown:
        raise _offenders(unknown, "videos are in a class folder not named in classInd.txt", str(lst), len(unknown) + len(paths))
    return _finish(paths, labels, classes, {}, str(lst), "label", check_files)


_HMDB = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$")


def _load_hmdb51(folder: Path, root: Optional[Path], split: int, subset: str, check_files: bool) -> Manifest:
    files = sorted(p for p in folder.iterdir() if (m := _HMDB.match(p.name)) and int(m["n"]) == split)
    if not files:
        raise ManifestError(f"{folder}: no HMDB51 split files '<class>_test_split{split}.txt'")
    classes = sorted(_HMDB.match(p.name)["cls"] for p in files)
    want = "1" if subset == "train" else "2"
    root = root or folder
    paths, labels = [], []
    for p in files:
        cls = _HMDB.match(p.name)["cls"]
        for ln in _lines(p):
            parts = ln.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ManifestError(f"{p}: bad line {ln!r} (expected '<video file> <0|1|2>')")
            if parts[1] == want:
                paths.append(root / cls / parts[0])
                labels.append(classes.index(cls))
    return _finish(paths, labels, classes, {}, f"{folder} (split {split}, {subset})", "label", check_files)


def _scan_folder(folder: Path) -> list[Path]:
    """Video files below ``folder``; if there are none, the folders of image frames."""
    videos, frame_dirs = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        names = sorted(filenames)
        videos += [Path(dirpath) / n for n in names if n.lower().endswith(VIDEO_EXTENSIONS)]
        if any(n.lower().endswith(IMAGE_EXTENSIONS) for n in names):
            frame_dirs.append(Path(dirpath))
    return videos or frame_dirs


def _load_folder(folder: Path, check_files: bool) -> Manifest:
    found = _scan_folder(folder)
    raw = []
    for p in found:
        parts = p.relative_to(folder).parts
        raw.append(parts[0] if len(parts) > 1 else "")
    labels, classes = parse_labels(raw, str(folder), classes=sorted({r for r in raw if r}))
    if not found:
        raise ManifestError(f"{folder}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders found")
    return _finish(found, labels, classes, {}, str(folder), "label", check_files)


def _load_images(folder: Path, check_files: bool) -> Manifest:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found += [Path(dirpath) / n for n in sorted(filenames) if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not found:
        raise ManifestError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    raw = [p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else "" for p in found]
    labels, classes = parse_labels(raw, str(folder), classes=sorted({r for r in raw if r}))
    return _finish(found, labels, classes, {}, str(folder), "label", check_files)


def detect_format(spec: Path) -> str:
    """csv / kinetics / ucf101 / hmdb51 / folder, from what ``spec`` looks like."""
    if spec.is_file():
        if spec.suffix.lower() == ".csv":
            header = _read_csv_header(spec)
            return "kinetics" if "youtube_id" in header else "csv"
        raise ManifestError(f"{spec}: cannot tell the manifest format (expected a .csv file or a folder)")
    if spec.is_dir():
        if (spec / "classInd.txt").is_file() or (spec / "trainlist01.txt").is_file():
            return "ucf101"
        if any(spec.glob("*_test_split1.txt")):
            return "hmdb51"
        return "folder"
    raise ManifestError(f"manifest {spec} does not exist")


def _read_csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        first = next(csv.reader(f), [])
    return [h.strip() for h in first]


def load_manifest(spec: str | os.PathLike, format: str = "auto", root: Optional[str | os.PathLike] = None,
                  split: int = 1, subset: str = "train", label_column: str = "label",
                  check_files: bool = True) -> Manifest:
    """Read a manifest (see the module docstring for the formats).

    ``root`` is the video root of the split-file formats (default: ``spec``'s folder);
    ``split`` the official split number; ``subset`` ``"train"`` or ``"test"`` for the
    split-file formats. With ``check_files`` every listed file must exist.
    Raises :class:`ManifestError`.
    """
    if format not in FORMATS:
        raise ManifestError(f"unknown manifest format {format!r} (allowed: {', '.join(FORMATS)})")
    if subset not in ("train", "test"):
        raise ManifestError(f"bad subset {subset!r} (allowed: train, test)")
    if str(spec).startswith("builtin:"):
        raise ManifestError(f"{spec}: built-in manifests are opened with vidssl.data.builtin.open_manifest")
    if not str(spec).strip():  # Path("") would be the current folder, read as a folder of videos
        raise ManifestNotFoundError("no manifest given (an empty path)")
    spec = Path(os.path.expanduser(str(spec))).resolve()
    root_p = Path(os.path.expanduser(str(root))).resolve() if root else None
    if not spec.exists():
        raise ManifestNotFoundError(f"manifest {spec} does not exist")
    fmt = detect_format(spec) if format == "auto" else format
    if fmt in ("csv", "kinetics") and not spec.is_file():
        raise ManifestError(f"{spec}: format {fmt!r} needs a CSV file")
    if fmt in ("ucf101", "hmdb51", "folder", "images") and not spec.is_dir():
        raise ManifestError(f"{spec}: format {fmt!r} needs a folder")
    if label_column != "label" and fmt in ("ucf101", "hmdb51", "folder", "images"):
        raise ManifestError(f"{spec}: format {fmt!r} has only class labels (label_column must be 'label', got {label_column!r})")
    if fmt == "csv":
        m = _load_csv(spec, label_column, check_files)
    elif fmt == "kinetics":
        m = _load_kinetics(spec, root_p, label_column, check_files)
    elif fmt == "ucf101":
        m = _load_ucf101(spec, root_p, split, subset, check_files)
    elif fmt == "hmdb51":
        m = _load_hmdb51(spec, root_p, split, subset, check_files)
    elif fmt == "images":
        m = _load_images(spec, check_files)
    else:
        m = _load_folder(spec, check_files)
    return m


def write_manifest(path: str | os.PathLike, paths: Sequence[str | os.PathLike],
                   labels: Optional[Sequence[int | str]] = None, *,
                   label_sets: Optional[Sequence[Sequence[int | str]]] = None, **columns: Sequence) -> Path:
    """Write a manifest CSV (``path``, ``label`` when given, ``labels`` when ``label_sets`` is
    given: each video's labels ``;``-joined, empty for none; then ``columns``).

    Absolute paths inside the CSV's folder are written relative to it (so the folder
    can be moved); relative paths are written as given (read back relative to the
    CSV's folder); other absolute paths stay absolute. A label of -1 or None is
    written empty.
    """
    out = Path(path)
    base = out.parent.resolve()
    n = len(paths)
    if labels is not None and len(labels) != n:
        raise ManifestError(f"write_manifest: {n} paths but {len(labels)} labels")
    if label_sets is not None and len(label_sets) != n:
        raise ManifestError(f"write_manifest: {n} paths but {len(label_sets)} label sets")
    for k, v in columns.items():
        if len(v) != n:
            raise ManifestError(f"write_manifest: {n} paths but {len(v)} values in column {k!r}")
        if k in ("path", "label", LABEL_SETS_COLUMN):
            raise ManifestError(f"write_manifest: column name {k!r} is reserved")
    header = (["path"] + (["label"] if labels is not None else [])
              + ([LABEL_SETS_COLUMN] if label_sets is not None else []) + list(columns))

    def write(raw) -> None:
        f = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            p = Path(paths[i])
            if p.is_absolute():
                try:
                    p = p.resolve().relative_to(base)
                except ValueError:
                    pass
            row = [p.as_posix()]
            if labels is not None:
                y = labels[i]
                row.append("" if y is None or (not isinstance(y, str) and int(y) == -1) else str(y))
            if label_sets is not None:
                row.append(format_label_set([str(y) for y in label_sets[i]]) if label_sets[i] else "")
            row += [str(columns[k][i]) for k in columns]
            w.writerow(row)
        f.detach()  # flushed; the raw file stays open for atomic_write

    return atomic_write(out, write)
