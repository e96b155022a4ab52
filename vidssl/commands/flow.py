"""``vidssl flow extract``: optical flow of every video of a manifest, stored as JPEG pairs.

  vidssl flow extract MANIFEST --out FLOW_DIR [--method tvl1|dis] [--shard i/n] [--workers K]

Then train or evaluate on it with ``data.modality=flow data.flow_root=FLOW_DIR``.
The layout and the quantisation are described in ``vidssl/data/flow_store.py``.
"""
from __future__ import annotations

import argparse
import sys

from vidssl.commands.idt import _job_args, _load, _manifest_args


def add_parser(sub) -> None:
    p = sub.add_parser("flow", help="optical flow: extract TV-L1 / DIS flow of a manifest to JPEG pairs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    fsub = p.add_subparsers(dest="flow_command", metavar="COMMAND")
    fsub.required = True
    e = fsub.add_parser("extract", help="flow of every video (one folder each, resumable, skips corrupt videos)")
    _manifest_args(e)
    e.add_argument("--out", required=True, help="output folder: <out>/<video stem>/flow_{x,y}_00001.jpg ...")
    e.add_argument("--method", default="tvl1", choices=["tvl1", "dis"],
                   help="tvl1: OpenCV's Dual TV-L1 (precise, slow; the paper's best); dis: DIS fast preset")
    e.add_argument("--bound", type=float, default=10.0, help="clip to +-BOUND pixels before 8-bit quantising (10)")
    e.add_argument("--short-side", type=int, default=256,
                   help="downscale frames to this short side first, never upscale (256, the paper's; 0 = native)")
    e.add_argument("--quality", type=int, default=95, help="JPEG quality (95)")
    e.add_argument("--backend", default="pyav", choices=["pyav", "frames"], help="how videos are decoded")
    _job_args(e)
    e.set_defaults(func=run_extract)


def run_extract(args) -> int:
    from vidssl.data.flow_store import FlowOptions, extract_flow_manifest
    from vidssl.shards import parse_shard

    from vidssl.errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {args.workers})")
    opts = FlowOptions(method=args.method, bound=args.bound, short_side=args.short_side or None,
                       quality=args.quality, backend=args.backend)
    shard = parse_shard(args.shard)
    manifest = _load(args)
    stats = extract_flow_manifest(manifest.paths, args.out, opts, shard=shard, workers=args.workers,
                                  progress=not args.quiet and sys.stderr.isatty())
    secs = max(stats["seconds"], 1e-9)
    print(f"extracted {stats['done']} videos ({stats['fields']} flow fields, {stats['fields'] / secs:.1f} fields/s, "
          f"{args.method}), {stats['skipped']} already done, {len(stats['failed'])} failed")
    for path, why in stats["failed"]:
        print(f"FAILED  {path}: {why}")
    return 1 if stats["failed"] else 0
