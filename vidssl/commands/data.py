"""``vidssl data synth OUT`` (the built-in dataset) and ``vidssl check-videos MANIFEST``."""
from __future__ import annotations

import sys

from vidssl.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="datasets: render the built-in synthetic dataset")
    dsub = p.add_subparsers(dest="data_command", metavar="COMMAND")
    dsub.required = True
    s = dsub.add_parser("synth", help="render the built-in dataset (motion-defined classes) into OUT")
    s.add_argument("out", help="output folder (videos/, train.csv, test.csv, *_appearance.csv)")
    s.add_argument("--preset", default="demo", choices=["demo", "benchmark", "direction", "detection"],
                   help="demo: the small dataset of the demo and tests (300 videos, procedural scenes); "
                        "benchmark: 2,100 videos with photograph scenes, train/val/test 1200/300/600 "
                        "(what builtin-bench: names); direction: 400 videos of move_left/right/up/down, "
                        "which a horizontal flip confuses (builtin-direction:); detection: 400 videos of "
                        "2-3 objects with a class each and keyframe boxes (builtin-detect:)")
    s.add_argument("--videos", type=int, default=None,
                   help="number of videos (default: the preset's; the preset's split fractions are kept)")
    s.add_argument("--workers", type=int, default=1, help="rendering processes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--camera", type=float, default=0.0,
                   help="camera pan speed in px/frame at 64 px (0: still camera, the standard dataset)")
    s.add_argument("--wander", type=float, default=0.0,
                   help="speed in px/frame at 64 px of a distractor that changes course every 16 frames "
                        "(0: none, the standard dataset)")
    s.set_defaults(func=run_synth)

    pr = dsub.add_parser("prepare", help="re-encode a manifest's videos to a short side, frame rate and "
                                         "keyframe interval for training (sharded, resumable)")
    pr.add_argument("manifest")
    pr.add_argument("--out", required=True, help="output folder (videos + manifest.csv)")
    pr.add_argument("--short-side", type=int, default=256, help="short side in pixels, never upscaled (256; 0 = keep)")
    pr.add_argument("--fps", type=float, default=None, help="frame rate of the output (default: keep)")
    pr.add_argument("--keyint", type=int, default=16, help="frames between keyframes (16)")
    pr.add_argument("--crf", type=int, default=18, help="H.264 quality (18)")
    pr.add_argument("--preset", default="veryfast", help="x264 preset (veryfast)")
    pr.add_argument("--format", default="auto")
    pr.add_argument("--root", default=None)
    pr.add_argument("--backend", default="pyav", choices=["pyav", "frames"])
    from vidssl.commands.idt import _job_args

    _job_args(pr)
    pr.set_defaults(func=run_prepare)

    c = sub.add_parser("check-videos", help="decode every video of a manifest; list the bad ones (exit 1 if any)")
    c.add_argument("manifest")
    c.add_argument("--format", default="auto")
    c.add_argument("--root", default=None)
    c.add_argument("--backend", default="pyav", choices=["pyav", "frames", "image"])
    c.add_argument("--workers", type=int, default=1,
                   help="decoding processes (default 1); the report is the same, in manifest order")
    c.set_defaults(func=run_check)


def run_synth(args) -> int:
    from vidssl.data.synthetic import PRESETS, make_synthetic

    kwargs = {**PRESETS[args.preset], "seed": args.seed, "camera": args.camera, "wander": args.wander}
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {args.workers})")
    if args.videos is not None:
        if args.videos < 2:
            raise ConfigError(f"--videos must be >= 2 (got {args.videos})")
        kwargs["videos"] = args.videos
    out = make_synthetic(args.out, workers=args.workers, progress=sys.stderr.isatty(), **kwargs)
    for name, path in out.items():
        print(f"{name}: {path}")
    return 0


def run_check(args) -> int:
    from vidssl.data.builtin import open_manifest
    from vidssl.data.check import check_videos

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {args.workers})")
    manifest = open_manifest(args.manifest, format=args.format, root=args.root, check_files=False)
    bad = check_videos(manifest, backend=args.backend, progress=sys.stderr.isatty(), workers=args.workers)
    for path, reason in bad:
        print(f"BAD  {path}: {reason}")
    print(f"{len(manifest) - len(bad)} of {len(manifest)} videos decode; {len(bad)} bad")
    return 1 if bad else 0


def run_prepare(args) -> int:
    from vidssl.data.builtin import open_manifest
    from vidssl.data.prepare import PrepareOptions, prepare_manifest
    from vidssl.shards import parse_shard

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {args.workers})")
    shard = parse_shard(args.shard)
    opts = PrepareOptions(short_side=args.short_side or None, fps=args.fps, keyint=args.keyint, crf=args.crf,
                          preset=args.preset, backend=args.backend)
    manifest = open_manifest(args.manifest, format=args.format, root=args.root, check_files=False)
    stats = prepare_manifest(manifest, args.out, opts, shard=shard, workers=args.workers,
                             progress=not args.quiet and sys.stderr.isatty())
    secs = max(stats["seconds"], 1e-9)
    print(f"prepared {stats['done']} videos ({stats['frames']} frames, {stats['frames'] / secs:.0f} frames/s), "
          f"{stats['skipped']} already done, {len(stats['failed'])} failed; manifest of {stats['listed']} videos: "
          f"{stats['manifest']}")
    for path, why in stats["failed"]:
        print(f"FAILED  {path}: {why}")
    return 1 if stats["failed"] else 0
