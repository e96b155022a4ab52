"""Multi-label manifests made of several columns of another manifest.

:func:`write_multilabel_manifest` joins, per video, the values of some columns into one
``;``-separated label set (:mod:`vidssl.data.multilabel`). On the built-in data the default
columns give every video two label groups, its motion class and its scene
(``move_up;stripes_warm``): a multi-label task (Charades-style, large-scale study App. B.4)
whose videos are rendered exactly as for the single-label manifests.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from vidssl.data.manifests import Manifest, load_manifest, write_manifest
from vidssl.errors import ManifestError


def write_multilabel_manifest(source: Manifest | str | os.PathLike, out: str | os.PathLike,
                              columns: Sequence[str] = ("label", "appearance"), **load_kwargs) -> Path:
    """Write ``out``, a CSV with ``path`` and ``labels``: the label set of a video is its values
    in ``columns`` of ``source`` (a :class:`~vidssl.data.manifests.Manifest`, or a spec that
    :func:`~vidssl.data.manifests.load_manifest` reads with ``load_kwargs``; ``label`` names
    its label column). Empty values are left out; a name found in two columns is one class.
    Returns ``out``."""
    m = source if isinstance(source, Manifest) else load_manifest(source, **load_kwargs)
    table = {"label": m.raw_labels(), **m.columns}
    missing = [c for c in columns if c not in table]
    if missing:
        raise ManifestError(f"{m.source}: no column {', '.join(map(repr, missing))} (columns: {', '.join(table)})")
    sets = [[v for v in dict.fromkeys(str(table[c][i]).strip() for c in columns) if v] for i in range(len(m))]
    return write_manifest(out, m.paths, label_sets=sets)
