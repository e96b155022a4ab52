"""The ``vidssl`` command: sub-commands only; each lives in ``vidssl/commands/``.

A command module defines ``add_parser(subparsers)`` which registers its parser and
sets ``func`` (called with the parsed arguments, returns an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from vidssl.errors import ConfigError

COMMANDS = [
    "vidssl.commands.pretrain",  # pretrain, train-supervised
    "vidssl.commands.evaluate",  # eval ...
    "vidssl.commands.features",  # features MANIFEST (one embedding per video -> .npy + .csv)
    "vidssl.commands.data",  # data synth, check-videos
    "vidssl.commands.demo",  # demo
    "vidssl.commands.viz",  # viz tsne
    "vidssl.commands.cluster",  # cluster (k-means of a bank or features vs. labels)
    "vidssl.commands.idt",  # idt extract, fit, encode
    "vidssl.commands.flow",  # flow extract (stored TV-L1 / DIS optical flow)
    "vidssl.commands.workflow",  # workflow la-idt (IDT prior -> IR -> LA(IDT) -> LA(joint), end to end)
    "vidssl.commands.compare",  # compare RUN... (evaluations of several runs -> report.md / report.html)
    "vidssl.commands.weights",  # weights import|export (torchvision r3d_18 / r2plus1d_18, safetensors)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidssl", description="Self-supervised video representation learning and its evaluation."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # argparse cannot interleave a "*" positional with options: `eval knn --json X a=1` leaves the
    # overrides over, so key=value words left over go to the command's overrides
    args, rest = parser.parse_known_args(argv)
    stray = [r for r in rest if r.startswith("-") or "=" not in r or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if rest:
        args.overrides = list(args.overrides or []) + rest
    try:
        code = args.func(args)
    except ConfigError as e:
        print(f"vidssl: config error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        # bad input (ManifestError, CheckpointError, VideoDecodeError, ... are ValueErrors): one
        # clear line instead of a traceback; VIDSSL_DEBUG=1 shows where it came from
        if os.environ.get("VIDSSL_DEBUG"):
            raise
        print(f"vidssl {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vidssl: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
