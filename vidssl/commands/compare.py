"""``vidssl compare RUN... --train M --test M [--out DIR] [--evals linear,knn,retrieval] [key=value ...]``.

Runs :func:`vidssl.viz.compare.compare_runs`: every run evaluated with the chosen
protocols, ``report.md``, ``report.html`` and ``metrics.json`` written into ``--out``.
A RUN is a run directory, a checkpoint (.pt), or ``random:RECIPE`` (frozen random
weights of the recipe's backbone, the random-init reference).
"""
from __future__ import annotations

import sys
from pathlib import Path

from vidssl.eval.protocols import DEFAULT_EVALS


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="evaluate several runs and write a report (table, t-SNE, retrieval)",
                       description=__doc__)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory, checkpoint, or random:RECIPE")
    p.add_argument("--train", required=True, help="labelled training manifest (or builtin:train)")
    p.add_argument("--test", required=True, help="labelled test manifest (or builtin:test)")
    p.add_argument("--out", default="compare", help="report folder (default: ./compare)")
    p.add_argument("--evals", default=",".join(DEFAULT_EVALS),
                   help=f"comma-separated protocols (default {','.join(DEFAULT_EVALS)})")
    p.add_argument("--label-column", default=None, help="manifest column holding the labels (default: label)")
    p.add_argument("--no-group", action="store_true", help="one row per run, even for <name>_seed<k> runs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run, overrides=[])


def run(args) -> int:
    # key=value words after the runs land in `runs` (argparse cannot tell them apart): they are overrides
    runs = [r for r in args.runs if "=" not in r or Path(r).exists()]
    overrides = [r for r in args.runs if r not in runs] + list(args.overrides or [])
    from vidssl.viz.compare import compare_runs

    page, table = compare_runs(runs, args.train, args.test, Path(args.out), args.evals,
                           not args.quiet and sys.stderr.isatty(), args.label_column, overrides, not args.no_group)
    print(table)
    print(f"report: {page} and {page.with_suffix('.md')}")
    return 0
