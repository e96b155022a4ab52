"""The built-in dataset as a manifest spec: ``builtin:train``, ``builtin:test``,
``builtin:train_appearance``, ``builtin:test_appearance``.

The videos are rendered on first use (see :mod:`vidssl.data.synthetic`) into
``$VIDSSL_DATA/synth`` (default ``~/.cache/vidssl/synth``) and reused afterwards,
so recipes can name the built-in data without a path. :func:`open_manifest` is what
every command and library entry point calls on a user's manifest spec: it resolves
``builtin:`` names and reads everything else with :func:`~vidssl.data.manifests.load_manifest`.
"""
from __future__ import annotations

import os
from pathlib import Path

from vidssl.data.manifests import Manifest, load_manifest
from vidssl.errors import ManifestError

PREFIX = "builtin:"
SPLITS = ("train", "test", "train_appearance", "test_appearance")


def builtin_root() -> Path:
    base = os.environ.get("VIDSSL_DATA") or Path.home() / ".cache" / "vidssl"
    return Path(base) / "synth"


def is_builtin(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def resolve_builtin(spec: str) -> str:
    """``builtin:SPLIT`` -> path of that manifest, rendering the dataset if needed."""
    split = spec[len(PREFIX):] or "train"
    if split not in SPLITS:
        raise ManifestError(f"unknown built-in manifest {spec!r} (allowed: {', '.join(PREFIX + s for s in SPLITS)})")
    from vidssl.data.synthetic import make_synthetic

    root = builtin_root()
    make_synthetic(root)
    return str(root / f"{split}.csv")


def open_manifest(spec: str | os.PathLike, **kwargs) -> Manifest:
    """:func:`~vidssl.data.manifests.load_manifest` of ``spec``, or of the built-in
    manifest it names (``builtin:SPLIT``, rendered on first use)."""
    if is_builtin(spec):
        spec = resolve_builtin(str(spec))
    return load_manifest(spec, **kwargs)
