"""Per-video feature files and their alignment with the training manifest.

Video LA's ``file`` and ``joint`` cluster sources (:mod:`vidssl.methods.la`) read an
[N, F] array whose row i belongs to video i of the training manifest — the IDT
Fisher-vector sketches of the dense-trajectory paper (Sec. 3.3), or any saved
embeddings. A wrong row order silently trains the network on another video's
clusters, so the file is checked against the manifest before training starts.

``vidssl idt encode`` writes an ``.npz`` with

- ``features`` float32 [N, F] (F = 2000 for the count-sketched Fisher vectors),
- ``paths`` [N]: the manifest order the rows follow,
- ``missing`` bool [N]: videos without descriptors (their rows are zeros),

and :func:`check_alignment` uses ``paths`` and ``missing``. A plain ``.npy`` / ``.pt``
array carries no order, so only its row count can be checked.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from vidssl.errors import ConfigError

SHOW = 5  # offenders named in an error message


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"cluster features file not found: {p} (method.cluster_features: an [N, F] array aligned "
                          "with the training manifest, e.g. the output of `vidssl idt encode`)")
    return p


def load_feature_file(path: str | Path) -> np.ndarray:
    """float32 [N, F] from .npy, .npz (``features``, else its first array) or .pt/.pth
    (a tensor or {"features": tensor})."""
    p = _existing(path)
    if p.suffix == ".npy":
        x = np.load(p)
    elif p.suffix == ".npz":
        with np.load(p) as z:
            x = z["features"] if "features" in z.files else z[z.files[0]]
    elif p.suffix in (".pt", ".pth"):
        obj = torch.load(p, map_location="cpu", weights_only=True)
        x = obj["features"] if isinstance(obj, dict) else obj
        x = x.float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    else:
        raise ConfigError(f"cluster features file {p}: unknown format (allowed: .npy, .npz, .pt, .pth)")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"cluster features file {p}: expected a 2-d array [N, F], got shape {x.shape}")
    return x


def read_layout(path: str | Path) -> tuple[int, Optional[list[str]], Optional[np.ndarray]]:
    """(rows, paths [N] or None, missing bool [N] or None) without reading the features
    when the format allows it (.npz members and .npy headers are read lazily)."""
    p = _existing(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            key = "features" if "features" in z.files else z.files[0]
            rows = len(z[key])
            paths = [str(s) for s in z["paths"].tolist()] if "paths" in z.files else None
            missing = z["missing"].astype(bool) if "missing" in z.files else None
        return rows, paths, missing
    if p.suffix == ".npy":
        return len(np.load(p, mmap_mode="r")), None, None
    return len(load_feature_file(p)), None, None


def _names(paths: Sequence[str], idx) -> str:
    idx = list(idx)
    more = f" (and {len(idx) - SHOW} more)" if len(idx) > SHOW else ""
    return ", ".join(str(paths[i]) for i in idx[:SHOW]) + more


def _keys(file_paths: Sequence[str], manifest_paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Comparable names: normalised paths, or base names when the two lists share no path
    but every base name is unique on both sides (descriptors computed on another machine,
    the videos mounted elsewhere)."""
    a = [os.path.normpath(str(p)) for p in file_paths]
    b = [os.path.normpath(str(p)) for p in manifest_paths]
    if set(a).isdisjoint(b):
        an, bn = [os.path.basename(p) for p in a], [os.path.basename(p) for p in b]
        if len(set(an)) == len(an) and len(set(bn)) == len(bn):
            return an, bn
    return a, b


def check_alignment(path: str | Path, num_samples: int, manifest_paths: Optional[Sequence[str]] = None,
                    key: str = "method.cluster_features") -> None:
    """Raise :class:`ConfigError` unless row i of ``path`` is video i of the manifest.

    Checks, in order: the row count against ``num_samples``; when both the file and the
    caller know the paths, that the manifest's videos are all in the file and in the
    same order; that no row is flagged ``missing`` (a video without IDT descriptors
    would join the cluster of all-zero rows).
    """
    rows, paths, missing = read_layout(path)
    hint = "re-encode it from the training manifest (`vidssl idt encode TRAIN_MANIFEST ...`)"
    if manifest_paths is not None and paths is not None:
        fk, mk = _keys(paths, manifest_paths)
        in_file, in_manifest = set(fk), set(mk)
        absent = [i for i, k in enumerate(mk) if k not in in_file]
        if absent:
            raise ConfigError(f"{key}={path}: {len(absent)} videos of the training manifest are not in the file: "
                              f"{_names(manifest_paths, absent)}; {hint}")
        if rows != num_samples or fk != mk:
            if rows == num_samples and in_file == in_manifest:
                first = next(i for i, (x, y) in enumerate(zip(fk, mk)) if x != y)
                raise ConfigError(f"{key}={path}: the rows follow another order than the training manifest "
                                  f"(row {first} is {paths[first]}, the manifest's video {first} is "
                                  f"{manifest_paths[first]}); {hint}")
            extra = [i for i, k in enumerate(fk) if k not in in_manifest]
            raise ConfigError(f"{key}={path} has {rows} rows but the training manifest has {num_samples} videos "
                              f"(rows of other videos: {_names(paths, extra) or 'none'}); {hint}")
    elif rows != num_samples:
        raise ConfigError(f"{key}={path} has {rows} rows but the training manifest has {num_samples} videos; {hint}")
    if missing is not None and missing.any():
        bad = np.flatnonzero(missing)
        names = paths if paths is not None else [f"row {i}" for i in range(rows)]
        raise ConfigError(f"{key}={path}: {len(bad)} videos have no IDT descriptors (zero rows): "
                          f"{_names(names, bad)}; run `vidssl idt extract` for them (corrupt ones: "
                          "`vidssl check-videos`) or drop them from the manifest, then encode again")
