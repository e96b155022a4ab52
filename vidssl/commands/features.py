"""``vidssl features MANIFEST --checkpoint CKPT --out feats.npy [key=value ...]``.

Writes one embedding per video (the mean over its test-time views) as float32 ``[N, D]``
to ``feats.npy`` and the videos' paths and labels to ``feats.csv`` beside it
(:func:`vidssl.eval.export.export_features`). ``--checkpoint random`` embeds with frozen
random weights of the recipe given with ``--config``.
"""
from __future__ import annotations

import sys

from vidssl.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("features", help="one embedding per video of a manifest -> .npy (+ .csv of labels)",
                       description=__doc__)
    p.add_argument("manifest", help="videos: CSV, split folder, folder, or builtin:SPLIT")
    p.add_argument("--checkpoint", required=True, help="a run's checkpoint (.pt), a run directory, or 'random'")
    p.add_argument("--out", required=True, help="the .npy file to write (the labels go beside it as .csv)")
    p.add_argument("--config", default=None,
                   help="recipe giving model and data settings for --checkpoint random (e.g. ir_tiny)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader processes (default: data.workers)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="clips per forward pass (default: eval.batch_size)")
    p.add_argument("--label-column", default=None, help="manifest column holding the labels (default: label)")
    p.add_argument("--subset", choices=("train", "test"), default="train",
                   help="which list of a UCF101 / HMDB51 split folder (default: train)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.test_clips=4")
    p.set_defaults(func=run)


def run(args) -> int:
    from vidssl.eval.encoder import load_encoder
    from vidssl.eval.export import export_features, labels_path

    for name in ("workers", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "workers" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} must be >= {0 if name == 'workers' else 1} (got {value})")
    labels_path(args.out)  # a bad --out fails before any work
    encoder = load_encoder(args.checkpoint, args.overrides, device=None, recipe=args.config)
    manifest = encoder.open_manifest(args.manifest, label_column=args.label_column, subset=args.subset)
    workers = encoder.cfg.data.workers if args.workers is None else args.workers
    summary = export_features(encoder, manifest, args.out, workers=workers, batch_size=args.batch_size,
                              progress=not args.quiet and sys.stderr.isatty())
    print(f"wrote {summary['videos']} x {summary['dim']} features to {summary['features']} "
          f"(paths and labels: {summary['labels']})")
    if summary["failed"]:
        shown = ", ".join(summary["failed"][:5])
        print(f"vidssl features: {len(summary['failed'])} videos cannot be decoded (rows NaN, decoded=0): {shown}",
              file=sys.stderr)
    return 0
