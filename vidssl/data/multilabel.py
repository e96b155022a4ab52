"""Several labels per video (multi-label classification, Charades-style).

A multi-label manifest has a label column (``labels`` by default, or the one named by
``data.label_column`` / ``--label-column``) whose entries are ``;``-separated label sets:
class names (``sit;drink``) or integers (``3;17``), an empty entry meaning "no label".
Charades (large-scale study App. B.4) gives 157 classes with several actions per video,
and is measured in mean average precision (:mod:`vidssl.eval.map`).

A column is read as label sets when it is named ``labels`` (:data:`LABEL_SETS_COLUMN`) or
when any of its entries holds a ``;``; otherwise it is a single-label column
(:func:`vidssl.data.manifests.parse_labels`).

- :func:`parse_label_sets`: raw entries -> (sets of ints, class names);
- :func:`format_label_set`: one set -> the raw entry (what a CSV holds);
- :func:`multi_hot`: sets -> float32 ``[N, K]`` 0/1 targets (the batch's ``multi_hot``).

:func:`vidssl.data.label_groups.write_multilabel_manifest` makes a multi-label manifest out of
several columns of another one (on the built-in data: the motion class and the scene).
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from vidssl.errors import ManifestError

SEPARATOR = ";"
LABEL_SETS_COLUMN = "labels"
_MAX_LISTED = 5  # offenders named in an error message
_INT = re.compile(r"[+-]?\d+")


def is_label_sets_column(name: str, values: Sequence[str]) -> bool:
    """Whether column ``name`` holds label sets: it is named ``labels``, or an entry has a ``;``."""
    return name == LABEL_SETS_COLUMN or any(SEPARATOR in str(v) for v in values)


def split_entry(value: str) -> Optional[list[str]]:
    """The labels of one raw entry (``[]`` when empty), or None when it is malformed (an
    empty label between separators, e.g. ``a;;b`` or ``a;``)."""
    value = str(value).strip()
    if not value:
        return []
    parts = [p.strip() for p in value.split(SEPARATOR)]
    return None if any(p == "" for p in parts) else parts


def parse_label_sets(values: Sequence[str], where: str = "manifest",
                     classes: Optional[Sequence[str]] = None) -> tuple[list[list[int]], list[str]]:
    """Raw ``;``-separated entries -> (label sets, class names).

    Each set is sorted, without repeats; an empty entry is the empty set. When every label
    of the column is an integer (and ``classes`` is not given), the integers are the labels
    and there are no class names; otherwise every label is a class name, numbered in sorted
    order (or in the order of ``classes``). Raises :class:`ManifestError` naming the first
    malformed entries, negative integers, integers mixed with names, or names missing from
    ``classes``.
    """
    split = [split_entry(v) for v in values]
    bad = [f"entry {i + 1}: {str(values[i]).strip()!r}" for i, s in enumerate(split) if s is None]
    if bad:
        raise ManifestError(f"{where}: {len(bad)} malformed label sets (an empty label between "
                            f"'{SEPARATOR}'), e.g. {', '.join(bad[:_MAX_LISTED])}")
    present = sorted({p for s in split for p in s})
    if classes is None and present and all(_INT.fullmatch(p) for p in present):
        negative = sorted({int(p) for p in present if int(p) < 0})
        if negative:
            raise ManifestError(f"{where}: negative labels {negative[:_MAX_LISTED]} in label sets "
                                "(leave an entry empty for no label)")
        return [sorted({int(p) for p in s}) for s in split], []
    if classes is None and any(_INT.fullmatch(p) for p in present):
        mixed = [f"entry {i + 1}: {str(values[i]).strip()!r}" for i, s in enumerate(split)
                 if any(_INT.fullmatch(p) for p in s)]
        raise ManifestError(f"{where}: label sets mix integers and class names; {len(mixed)} entries hold "
                            f"integers, e.g. {', '.join(mixed[:_MAX_LISTED])}")
    names = list(classes) if classes is not None else present
    lookup = {n: i for i, n in enumerate(names)}
    unknown = [p for p in present if p not in lookup]
    if unknown:
        raise ManifestError(f"{where}: {len(unknown)} unknown class names, e.g. {', '.join(unknown[:_MAX_LISTED])}")
    return [sorted({lookup[p] for p in s}) for s in split], names


def format_label_set(labels: Sequence[int], classes: Sequence[str] = ()) -> str:
    """One label set as a CSV entry: names (when ``classes`` is given) or integers, ``;``-joined."""
    return SEPARATOR.join(classes[y] if classes else str(y) for y in labels)


def multi_hot(label_sets: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """Label sets -> float32 ``[N, num_classes]``: 1 where the class is a label of the video."""
    out = np.zeros((len(label_sets), num_classes), np.float32)
    for i, labels in enumerate(label_sets):
        if labels and max(labels) >= num_classes:
            raise ManifestError(f"label {max(labels)} of video {i} is outside the {num_classes} classes")
        out[i, list(labels)] = 1.0
    return out

