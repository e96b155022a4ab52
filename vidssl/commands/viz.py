"""``vidssl viz tsne``: a t-SNE picture of a checkpoint's video embeddings."""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="pictures: t-SNE of video embeddings")
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


def run_tsne(args) -> int:
    from vidssl.commands.evaluate import resolve_checkpoint
    from vidssl.eval.features import make_context, video_embeddings
    from vidssl.viz.tsne import plot_tsne, tsne_embedding

    ctx = make_context(resolve_checkpoint(args.checkpoint), args.manifest, args.manifest, args.overrides,
                       args.label_column, progress=sys.stderr.isatty(), recipe=args.config)
    feats, labels = ctx.features("train")
    points = tsne_embedding(video_embeddings(feats), seed=ctx.cfg.train.seed)
    out = plot_tsne(points, labels.numpy(), ctx.train.classes, Path(args.out),
                    title=f"{args.checkpoint} — coloured by {args.label_column}")
    print(out)
    return 0
