"""``vidssl workflow la-idt MANIFEST --out DIR [--recipe NAME] [--redo STAGE] [key=value ...]``.

The dense-trajectory paper's full method end to end (docs/la_idt.md): IDT extraction,
PCA + GMM fit, Fisher-vector encoding, Video IR warm-up, Video LA with the fixed IDT
clusters, tuning in the joint IDT + network space, then the clusters of every stage
against the manifest's label columns (DIR/clusters.json) and cluster montages.

Resumable stage by stage: run the same command again and finished stages are
skipped, an interrupted one resumes (``DIR/workflow.json`` keeps the records).
``--recipe`` names a workflow recipe of ``vidssl/configs/workflows`` (``la_idt_tiny``
for the built-in dataset in a few CPU minutes; ``la_idt_r3d18`` = the paper) or a YAML
path. Overrides: ``idt.KEY=V`` / ``fisher.KEY=V`` (IDT and Fisher options),
``stages.la_joint=null`` (switch a stage off), ``ir.KEY=V`` / ``la.KEY=V`` /
``la_idt.KEY=V`` / ``la_joint.KEY=V`` (one training stage), ``la_all.KEY=V`` (every
LA stage), any other ``KEY=V`` (every training stage, e.g. ``model.width=8``).
"""
from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("workflow", help="multi-stage recipes end to end (la-idt: the IDT-prior method)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wsub = p.add_subparsers(dest="workflow", metavar="WORKFLOW")
    wsub.required = True
    w = wsub.add_parser("la-idt", help="IDT -> Fisher vectors -> IR -> LA(IDT) -> LA(joint), with cluster analysis",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("manifest", help="training manifest (CSV, split lists, folder, builtin:train)")
    w.add_argument("--out", required=True, help="workflow directory (idt/, runs/, clusters.json, workflow.json)")
    w.add_argument("--recipe", default="la_idt_r3d18",
                   help="workflow recipe name or YAML path (default: la_idt_r3d18, the paper's settings)")
    w.add_argument("--redo", default=None, metavar="STAGE",
                   help="start this stage and all later ones over (extract, fit, encode, ir, la, la_idt, "
                        "la_joint, analysis)")
    w.add_argument("overrides", nargs="*", metavar="key=value", help="overrides (see above)")
    w.set_defaults(func=run)


def run(args) -> int:
    from vidssl.workflow.la_idt import run_la_idt

    # a stage that cannot go on (WorkflowError) is one line from vidssl.cli, exit code 1
    run_la_idt(args.manifest, args.out, args.recipe, list(args.overrides or []), redo=args.redo,
               progress=sys.stderr.isatty())
    return 0
