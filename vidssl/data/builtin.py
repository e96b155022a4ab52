"""The built-in datasets as manifest specs.

- ``builtin:train``, ``builtin:test``, ``builtin:train_appearance``,
  ``builtin:test_appearance``: the small dataset of the demo and the tests (300 videos),
  rendered into ``$VIDSSL_DATA/synth``;
- ``builtin-bench:train|val|test`` and ``builtin-bench:{train,val,test}_appearance``: the
  benchmark-size dataset (preset ``benchmark`` of :mod:`vidssl.data.synthetic`: 1,200 /
  300 / 600 videos, photograph scenes), rendered into ``$VIDSSL_DATA/synth-bench``;
- ``builtin-direction:train|val|test`` (and ``_appearance``): the direction-sensitive
  dataset (preset ``direction``: move_left / move_right / move_up / move_down, 240 / 60 /
  100 videos), rendered into ``$VIDSSL_DATA/synth-direction``;
- ``builtin-detect:train|val|test`` (and ``_appearance``): the action-detection dataset
  (preset ``detection``: 2-3 moving objects per video, each with its own motion class, 240 /
  60 / 100 videos; multi-label manifests), rendered into ``$VIDSSL_DATA/synth-detect``, with
  the keyframe boxes beside each manifest (``train_boxes.csv`` ..., :mod:`vidssl.data.boxes`).

``$VIDSSL_DATA`` defaults to ``~/.cache/vidssl``. The videos are rendered on first use
(:func:`~vidssl.data.synthetic.make_synthetic`) and reused afterwards,
so recipes can name the built-in data without a path. :func:`open_manifest` is what
every command and library entry point calls on a user's manifest spec: it resolves
``builtin:`` names and reads everything else with :func:`~vidssl.data.manifests.load_manifest`.
"""
from __future__ import annotations

import os
from pathlib import Path

from vidssl.data.manifests import Manifest, load_manifest
from vidssl.errors import ManifestError, ManifestNotFoundError

PREFIX = "builtin:"
BENCH_PREFIX = "builtin-bench:"
DIRECTION_PREFIX = "builtin-direction:"
DETECT_PREFIX = "builtin-detect:"
SPLITS = ("train", "test", "train_appearance", "test_appearance")
BENCH_SPLITS = ("train", "val", "test", "train_appearance", "val_appearance", "test_appearance")
# prefix -> (folder under $VIDSSL_DATA, preset of vidssl.data.synthetic, splits)
DATASETS = {PREFIX: ("synth", "demo", SPLITS), BENCH_PREFIX: ("synth-bench", "benchmark", BENCH_SPLITS),
            DIRECTION_PREFIX: ("synth-direction", "direction", BENCH_SPLITS),
            DETECT_PREFIX: ("synth-detect", "detection", BENCH_SPLITS)}


def builtin_root(prefix: str = PREFIX) -> Path:
    base = os.environ.get("VIDSSL_DATA") or Path.home() / ".cache" / "vidssl"
    return Path(base) / DATASETS[prefix][0]


def _prefix(spec) -> str | None:
    if isinstance(spec, str):
        for prefix in DATASETS:
            if spec.startswith(prefix):
                return prefix
    return None


def is_builtin(spec: str | os.PathLike) -> bool:
    return _prefix(spec) is not None


def resolve_builtin(spec: str) -> str:
    """``builtin:SPLIT`` / ``builtin-bench:SPLIT`` -> path of that manifest, rendering the
    dataset if needed (the benchmark one in one process per CPU core)."""
    prefix = _prefix(spec)
    if prefix is None:
        raise ManifestNotFoundError(f"{spec!r} is not a built-in manifest (builtin:SPLIT or builtin-bench:SPLIT)")
    _, preset, splits = DATASETS[prefix]
    split = spec[len(prefix):] or "train"
    if split not in splits:
        raise ManifestNotFoundError(f"unknown built-in manifest {spec!r} (allowed: {', '.join(prefix + s for s in splits)})")
    from vidssl.data.synthetic import PRESETS, make_synthetic

    root = builtin_root(prefix)
    workers = 1 if preset == "demo" else max(1, min(8, len(os.sched_getaffinity(0))))
    make_synthetic(root, workers=workers, **PRESETS[preset])
    return str(root / f"{split}.csv")


def open_manifest(spec: str | os.PathLike, **kwargs) -> Manifest:
    """:func:`~vidssl.data.manifests.load_manifest` of ``spec``, or of the built-in
    manifest it names (``builtin:SPLIT``, rendered on first use)."""
    if is_builtin(spec):
        spec = resolve_builtin(str(spec))
    return load_manifest(spec, **kwargs)
