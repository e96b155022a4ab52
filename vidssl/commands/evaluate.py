"""``vidssl eval PROTOCOL --checkpoint CKPT --train M --test M [--json OUT] [key=value ...]``.

Runs :func:`vidssl.eval.protocols.evaluate`. ``--checkpoint random`` evaluates frozen
random weights of ``model.*`` (for ``finetune``: trains from random init). Protocols,
keys and defaults: docs/evaluation.md.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vidssl.eval.protocols import PROTOCOLS, evaluate


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


def run(args) -> int:
    metrics = evaluate(args.protocol, args.checkpoint, args.train, args.test, args.overrides,
                       args.label_column, progress=not args.quiet and sys.stderr.isatty(), recipe=args.config)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun (finetune) every process has the metrics
        return 0
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
