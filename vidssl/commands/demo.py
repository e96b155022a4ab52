"""``vidssl demo``: the whole pipeline on the built-in data (see :mod:`vidssl.demo`)."""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="render the built-in dataset, train, evaluate, report (minutes on 2 cores)")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--videos", type=int, default=None, help="size of the built-in dataset (default: its default)")
    p.add_argument("--epochs", type=int, default=None, help="override the epochs of every recipe (quick looks)")
    p.add_argument("--only", nargs="*", default=None, help="run only these entries (recipe names)")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value", dest="overrides",
                   help="config overrides for every recipe (e.g. model.width=8 for a quicker look)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vidssl.demo import run_demo

    run_demo(args.out, videos=args.videos, epochs=args.epochs, only=args.only, progress=sys.stderr.isatty(),
             overrides=args.overrides)
    return 0
