"""``vidssl viz``: pictures.

    vidssl viz tsne --checkpoint CKPT --manifest M [--label-column C] [--out tsne.png]
    vidssl viz clusters --run LA_RUN [--clustering i] [--clusters K] [--members n] [--frames f]
    vidssl viz clusters --labels LABELS.npy --manifest M ...
    vidssl viz cpc-steps RUN [RUN ...] [--names A B ...] [--out cpc_steps.png]

``tsne``: a t-SNE of a checkpoint's video embeddings, coloured by a label column (CPC
paper Fig. 5). ``clusters``: a montage of K random clusters, a few middle frames per
member (dense-trajectory paper Figs. 2-3), from the clusterings an LA checkpoint stores
(``cluster_labels``) or from a .npy of labels [N] (or [m, N], e.g. ``vidssl cluster --out``)
whose rows follow ``--manifest``. ``cpc-steps``: video CPC's prediction accuracy against
the step k, one line per run (CPC paper Fig. 3), with the figures printed as a table.
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="pictures: t-SNE of video embeddings, cluster montages", description=__doc__)
    vsub = p.add_subparsers(dest="viz_command", metavar="COMMAND")
    vsub.required = True
    t = vsub.add_parser("tsne", help="t-SNE of the video embeddings of a manifest, coloured by a label column")
    t.add_argument("--checkpoint", required=True, help="checkpoint, run directory, or 'random'")
    t.add_argument("--manifest", required=True)
    t.add_argument("--config", default=None, help="recipe for --checkpoint random")
    t.add_argument("--label-column", default="label", help="column that colours the points (e.g. appearance)")
    t.add_argument("--out", default="tsne.png")
    t.add_argument("overrides", nargs="*", metavar="key=value")
    t.set_defaults(func=run_tsne)

    c = vsub.add_parser("clusters", help="montage of random clusters of an LA run (or of a .npy of labels)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="LA checkpoint (.pt) or run directory: its stored cluster labels")
    src.add_argument("--labels", help=".npy of cluster labels [N] or [m, N], rows following --manifest")
    c.add_argument("--manifest", default=None, help="videos of the labels (default for --run: its training manifest)")
    c.add_argument("--clustering", type=int, default=0, help="which of the m clusterings (default 0)")
    c.add_argument("--clusters", type=int, default=4, help="clusters shown, drawn at random (default 4)")
    c.add_argument("--members", type=int, default=6, help="member videos per cluster (default 6)")
    c.add_argument("--frames", type=int, default=3, help="middle frames per member (default 3)")
    c.add_argument("--label-column", default="label", help="column naming each member (default: label)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default="clusters.png")
    c.set_defaults(func=run_clusters)

    k = vsub.add_parser("cpc-steps", help="video CPC: prediction accuracy against the step k, one line per run")
    k.add_argument("runs", nargs="+", help="run directories of `vidssl pretrain` with method cpc")
    k.add_argument("--names", nargs="*", default=None, help="legend names, one per run (default: folder names)")
    k.add_argument("--tail", type=float, default=0.1, help="fraction of the last logged rows averaged (0.1)")
    k.add_argument("--out", default="cpc_steps.png")
    k.set_defaults(func=run_cpc_steps)


def run_tsne(args) -> int:
    from vidssl.eval.features import make_context
    from vidssl.eval.protocols import resolve_checkpoint
    from vidssl.viz.tsne import save_tsne

    ctx = make_context(resolve_checkpoint(args.checkpoint), args.manifest, args.manifest, args.overrides,
                       args.label_column, progress=sys.stderr.isatty(), recipe=args.config)
    print(save_tsne(ctx, "train", Path(args.out), title=f"{args.checkpoint} — coloured by {args.label_column}"))
    return 0


def run_clusters(args) -> int:
    from vidssl.errors import ConfigError
    from vidssl.eval.clusters import load_labelings, member_names
    from vidssl.viz.montage import save_cluster_montage

    labelings, manifest, source, backend = load_labelings(args.run, args.labels, args.manifest)
    if not 0 <= args.clustering < len(labelings):
        raise ConfigError(f"--clustering {args.clustering}: {source} holds {len(labelings)} clusterings")
    for name in ("clusters", "members", "frames"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1")
    labels = labelings[args.clustering]
    out = save_cluster_montage(Path(args.out), labels, manifest.paths, clusters=args.clusters,
                               members=args.members, frames=args.frames, seed=args.seed,
                               names=member_names(manifest, args.label_column), backend=backend,
                               title=f"{source}: clustering {args.clustering} (members titled by {args.label_column})")
    print(out)
    return 0


def run_cpc_steps(args) -> int:
    from vidssl.errors import ConfigError
    from vidssl.viz.cpc_steps import plot_step_accuracy, step_accuracy

    names = args.names or [Path(r).name for r in args.runs]
    if len(names) != len(args.runs):
        raise ConfigError(f"--names gives {len(names)} names for {len(args.runs)} runs")
    curves = {n: step_accuracy(r, args.tail) for n, r in zip(names, args.runs)}
    steps = sorted({k for c in curves.values() for k in c})
    print("run".ljust(24) + "".join(f"k={k}".rjust(8) for k in steps))
    for n, c in curves.items():
        print(n[:24].ljust(24) + "".join((f"{c[k]:.3f}" if k in c else "-").rjust(8) for k in steps))
    print(plot_step_accuracy(curves, args.out))
    return 0
