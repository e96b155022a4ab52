"""``vidssl cluster``: k-means clusterings of a run's memory bank (or any saved features),
and how the clusters relate to the labels of the manifest.

    vidssl cluster --run RUN_DIR_OR_CKPT [--stored] [--manifest M] [--clusters K] [--clusterings m]
    vidssl cluster --features FEATS.npy [--manifest M] ...

``--run`` clusters the checkpoint's ``memory_bank.bank`` (IR and LA runs); its rows
follow the run's training manifest, which is the default ``--manifest``. ``--stored``
reports the clusterings an LA checkpoint holds (``cluster_labels``) instead of
clustering again. ``--features`` takes any [N, F] array (.npy, .npz, .pt), e.g. IDT
Fisher vectors, whose rows follow ``--manifest``.

For every clustering and every label column of the manifest (``label`` and the other
columns, e.g. ``appearance`` of the built-in data) it prints NMI, adjusted Rand index
and purity (:mod:`vidssl.eval.clusters`); ``--json`` writes them,
``--out`` saves the labels as an int64 array [m, N].
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
    p = sub.add_parser("cluster", help="k-means of a run's memory bank (or saved features) vs. the labels",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="IR/LA checkpoint (.pt) or run directory: cluster its memory bank")
    src.add_argument("--features", help="an [N, F] array (.npy, .npz, .pt) to cluster")
    p.add_argument("--stored", action="store_true", help="with --run: report the LA checkpoint's own clusterings")
    p.add_argument("--manifest", default=None,
                   help="manifest whose rows match the features (default for --run: the run's training manifest)")
    p.add_argument("--clusters", type=int, nargs="+", default=None,
                   help="K, or one K per clustering (default: the LA run's K, else N/40 as for Kinetics)")
    p.add_argument("--clusterings", type=int, default=None, help="m, clusterings with different seeds (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--niter", type=int, default=20, help="k-means iterations (default 20)")
    p.add_argument("--backend", choices=["auto", "faiss", "torch"], default="auto")
    p.add_argument("--out", default=None, help="save the cluster labels [m, N] as .npy")
    p.add_argument("--json", default=None, help="write the metrics as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from vidssl.eval.clusters import cluster_run, format_cluster_report

    labelings, report = cluster_run(args.run, args.features, stored=args.stored, manifest=args.manifest,
                                    clusters=args.clusters, clusterings=args.clusterings, seed=args.seed,
                                    niter=args.niter, backend=args.backend)
    print(format_cluster_report(report))
    if report.get("metrics") == {}:
        print("the manifest has no label columns: no metrics", file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, np.stack(labelings).astype(np.int64))
        print(f"labels [m, N] saved to {args.out}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({k: v for k, v in report.items() if k != "what"}, indent=2) + "\n")
    return 0
