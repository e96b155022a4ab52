"""``vidssl eval PROTOCOL --checkpoint CKPT --train M --test M [--json OUT] [key=value ...]``.

Runs :func:`vidssl.eval.protocols.evaluate`. ``--checkpoint random`` evaluates frozen
random weights of ``model.*`` (for ``finetune``: trains from random init).
``vidssl eval readout ... [--layers conv3,conv4,conv5]`` probes several layers (VIE Table 1)
and prints a row of top-1 per layer. ``vidssl eval detect ... [--train-boxes CSV --test-boxes CSV]``
trains an action-detection head on keyframe boxes (AVA's CSV layout; default: the
``*_boxes.csv`` beside each manifest, as ``builtin-detect:`` has) and reports frame mAP at
IoU 0.5. Protocols, keys and defaults: docs/evaluation.md.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vidssl.errors import ConfigError
from vidssl.eval.protocols import PROTOCOLS, evaluate
from vidssl.eval.readout import layer_table


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
    p.add_argument("--json", default=None,
                   help="write the metrics as one JSON object to this file ('-': to stdout, the table then to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--layers", default=None,
                   help="readout only: stages to probe, comma-separated (= eval.readout_layers; "
                        "default conv3,conv4,conv5)")
    for split in ("train", "test"):
        p.add_argument(f"--{split}-boxes", default=None,
                       help=f"detect only: AVA-layout boxes CSV of the {split} keyframes (= eval.detect_{split}_boxes; "
                            f"default: <{split} manifest>_boxes.csv beside it)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. eval.knn_k=20")
    p.set_defaults(func=run)


def run(args) -> int:
    overrides = list(args.overrides or [])
    if args.layers is not None:
        if args.protocol != "readout":
            raise ConfigError(f"--layers goes with `vidssl eval readout`, not {args.protocol}")
        overrides.append(f"eval.readout_layers=[{args.layers}]")
    for split in ("train", "test"):
        given = getattr(args, f"{split}_boxes")
        if given is not None:
            if args.protocol != "detect":
                raise ConfigError(f"--{split}-boxes goes with `vidssl eval detect`, not {args.protocol}")
            overrides.append(f"eval.detect_{split}_boxes={Path(given).resolve()}")
    metrics = evaluate(args.protocol, args.checkpoint, args.train, args.test, overrides,
                       args.label_column, progress=not args.quiet and sys.stderr.isatty(), recipe=args.config)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun (finetune) every process has the metrics
        return 0
    table = layer_table(metrics)  # readout: one row of top-1 per layer instead of every layer's metrics
    shown = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if table:
        shown = {k: v for k, v in shown.items() if not any(k.startswith(f"{n}_") for n in metrics["layers"])}
    to_stdout = args.json == "-"
    human = sys.stderr if to_stdout else sys.stdout  # stdout then holds the JSON only
    width = max(len(k) for k in shown)
    for k, v in shown.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}", file=human)
    for row in table:
        print(row, file=human)
    if to_stdout:
        print(json.dumps(metrics, indent=2))
    elif args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return 0
