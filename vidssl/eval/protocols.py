"""The evaluation protocols by name, and running one on a checkpoint.

Each protocol is a module of :mod:`vidssl.eval` with ``evaluate(ctx) -> dict`` on an
:class:`~vidssl.eval.features.EvalContext`; ``--checkpoint random`` stands for frozen
random weights of a recipe's ``model.*`` (for ``finetune``: training from random init).
Protocols, keys and defaults: docs/evaluation.md.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from vidssl.errors import ConfigError

PROTOCOLS = {
    "knn": "vidssl.eval.knn",
    "linear": "vidssl.eval.linear",
    "linear_clips": "vidssl.eval.linear_clips",
    "finetune": "vidssl.eval.finetune",
    "fewshot": "vidssl.eval.fewshot",
    "retrieval": "vidssl.eval.retrieval",
    "persistence": "vidssl.eval.persistence",
    "readout": "vidssl.eval.readout",  # linear probes at conv3 / conv4 / conv5 (VIE Table 1)
    "detect": "vidssl.eval.detect",  # AVA-style action detection on keyframe boxes (large-scale study App. B.3)
}
DEFAULT_EVALS = ("linear", "knn", "retrieval")  # what `vidssl compare` runs unless told


def resolve_checkpoint(path: str) -> str:
    """A run directory stands for its last checkpoint; ``random`` stays ``random``."""
    if path == "random":
        return path
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.pt"
    if not p.is_file():
        raise ConfigError(f"checkpoint not found: {p}")
    return str(p)


def evaluate(protocol: str, checkpoint: str, train: str, test: str, overrides=(), label_column=None,
             progress: bool = True, recipe: str | None = None) -> dict:
    """Metrics of ``protocol`` for ``checkpoint`` (a .pt, a run directory, or ``random`` with
    ``recipe``) with the labelled ``train`` and ``test`` manifests."""
    from vidssl.eval.features import make_context

    if recipe is not None and checkpoint != "random":
        raise ConfigError("--config goes with --checkpoint random (a checkpoint carries its own config)")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation {protocol!r} (allowed: {', '.join(sorted(PROTOCOLS))})")
    # a protocol whose inputs are not two labelled manifests builds its own context (detect: the boxes)
    make = getattr(importlib.import_module(PROTOCOLS[protocol]), "make_context", make_context)
    ctx = make(resolve_checkpoint(checkpoint), train, test, list(overrides), label_column, progress, recipe)
    return evaluate_context(protocol, ctx, checkpoint)


def evaluate_context(protocol: str, ctx, name: str | None = None) -> dict:
    """Run ``protocol`` on a prepared :class:`vidssl.eval.features.EvalContext` (several
    protocols on one context share its features)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation {protocol!r} (allowed: {', '.join(sorted(PROTOCOLS))})")
    metrics = importlib.import_module(PROTOCOLS[protocol]).evaluate(ctx)
    return {"protocol": protocol, "checkpoint": name or ctx.checkpoint, "num_train": len(ctx.train),
            "num_test": len(ctx.test), **metrics}
