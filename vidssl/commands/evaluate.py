"""``vidssl eval PROTOCOL --checkpoint CKPT --train M --test M [--json OUT] [key=value ...]``.

Each protocol is a module of :mod:`vidssl.eval` with ``evaluate(ctx) -> dict``.
``--checkpoint random`` evaluates frozen random weights of ``model.*`` (for ``finetune``:
trains from random init). Protocols, keys and defaults: docs/evaluation.md.
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

PROTOCOLS = {
    "knn": "vidssl.eval.knn",
    "linear": "vidssl.eval.linear",
    "finetune": "vidssl.eval.finetune",
    "fewshot": "vidssl.eval.fewshot",
    "retrieval": "vidssl.eval.retrieval",
    "persistence": "vidssl.eval.persistence",
}


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint's encoder (kNN, linear probe, fine-tuning, ...)",
                       description=__doc__)
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--checkpoint", required=True, help="a run's checkpoint (.pt), a run directory, or 'random'")
    p.add_argument("--train", required=True, help="labelled training manifest (or builtin:train)")
    p.add_argument("--test", required=True, help="labelled test manifest (or builtin:test)")
    p.add_argument("--config", default=None,
                   help="recipe giving model and data settings for --checkpoint random (e.g. supervised_tiny)")
    p.add_argument("--label-column", default=None, help="manifest column holding the labels (default: label)")
    p.add_argument("--json", default=None, help="write the metrics as one JSON object to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. eval.knn_k=20")
    p.set_defaults(func=run)


def resolve_checkpoint(path: str) -> str:
    """A run directory stands for its last checkpoint."""
    if path == "random":
        return path
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.pt"
    if not p.is_file():
        from vidssl.errors import ConfigError

        raise ConfigError(f"checkpoint not found: {p}")
    return str(p)


def evaluate(protocol: str, checkpoint: str, train: str, test: str, overrides=(), label_column=None,
             progress: bool = True, recipe: str | None = None) -> dict:
    from vidssl.errors import ConfigError
    from vidssl.eval.features import make_context

    if recipe is not None and checkpoint != "random":
        raise ConfigError("--config goes with --checkpoint random (a checkpoint carries its own config)")
    ctx = make_context(resolve_checkpoint(checkpoint), train, test, list(overrides), label_column, progress, recipe)
    return evaluate_context(protocol, ctx, checkpoint)


def evaluate_context(protocol: str, ctx, name: str | None = None) -> dict:
    """Run ``protocol`` on a prepared :class:`vidssl.eval.features.EvalContext` (several
    protocols on one context share its features)."""
    from vidssl.errors import ConfigError

    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation {protocol!r} (allowed: {', '.join(sorted(PROTOCOLS))})")
    metrics = importlib.import_module(PROTOCOLS[protocol]).evaluate(ctx)
    return {"protocol": protocol, "checkpoint": name or ctx.checkpoint, "num_train": len(ctx.train),
            "num_test": len(ctx.test), **metrics}


def run(args) -> int:
    metrics = evaluate(args.protocol, args.checkpoint, args.train, args.test, args.overrides,
                       args.label_column, progress=not args.quiet and sys.stderr.isatty(), recipe=args.config)
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
