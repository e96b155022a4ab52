"""``vidssl idt extract|fit|encode``: Improved Dense Trajectories and their Fisher vectors.

  vidssl idt extract MANIFEST --out DESC_DIR [--shard i/n] [--workers K] [options]
  vidssl idt fit MANIFEST --descriptors DESC_DIR --model fv.npz
  vidssl idt encode MANIFEST --descriptors DESC_DIR --model fv.npz --out idt_fv.npz

See docs/idt.md for every option and the file formats.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _manifest_args(p) -> None:
    p.add_argument("manifest", help="video manifest (CSV, UCF101/HMDB51/Kinetics lists, folder, builtin:train)")
    p.add_argument("--format", default="auto", help="manifest format (default: auto)")
    p.add_argument("--root", default=None, help="video root of split-file manifests")
    p.add_argument("--subset", default="train", choices=["train", "test"])
    p.add_argument("--split", type=int, default=1)


def _job_args(p) -> None:
    """--shard / --workers / --quiet of the commands that process a manifest video by video."""
    p.add_argument("--shard", default=None, help="i/n: process only shard i of n (SLURM arrays, several machines)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, one OpenCV thread each")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub) -> None:
    p = sub.add_parser("idt", help="Improved Dense Trajectories: extract, fit PCA+GMM, encode Fisher vectors",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    isub = p.add_subparsers(dest="idt_command", metavar="COMMAND")
    isub.required = True

    e = isub.add_parser("extract", help="IDT descriptors of every video (one compressed .npz each, resumable)")
    _manifest_args(e)
    e.add_argument("--out", required=True, help="output folder for the descriptor files")
    _job_args(e)
    e.add_argument("--flow", default="farneback", choices=["farneback", "dis"],
                   help="optical flow: farneback (original) or dis (faster)")
    e.add_argument("--no-camera", action="store_true",
                   help="no camera-motion compensation (plain Dense Trajectories)")
    e.add_argument("--keypoints", default="orb", choices=["orb", "sift"], help="keypoints for the homography")
    e.add_argument("--person", default="none", choices=["none", "boxes", "hog"],
                   help="person masking for the homography: none, boxes (--boxes) or hog (OpenCV 4 only)")
    e.add_argument("--boxes", default=None,
                   help="box file, or folder of <video stem>.txt box files (frame x1 y1 x2 y2 score per line)")
    e.add_argument("--max-short-side", type=int, default=None, help="downscale frames to this short side")
    e.add_argument("--max-tracks", type=int, default=None, help="keep at most this many trajectories per video")
    e.add_argument("--max-frames", type=int, default=None, help="use at most this many frames per video")
    e.set_defaults(func=run_extract)

    f = isub.add_parser("fit", help="sample descriptors and fit PCA + diagonal GMM (+ the count sketch)")
    _manifest_args(f)
    f.add_argument("--descriptors", required=True, help="folder written by `vidssl idt extract`")
    f.add_argument("--model", required=True, help="output model file (.npz)")
    f.add_argument("--pca", default="variance", choices=["variance", "per_type"],
                   help="variance: one PCA keeping --variance (paper); per_type: half dims per type (IDT paper)")
    f.add_argument("--variance", type=float, default=0.9)
    f.add_argument("--components", type=int, default=256, help="GMM components K")
    f.add_argument("--per-video", type=int, default=500, help="descriptors sampled per video")
    f.add_argument("--max-videos", type=int, default=3500, help="videos sampled")
    f.add_argument("--normalisation", default="vlfeat", choices=["vlfeat", "unnormalised"])
    f.add_argument("--alpha", type=float, default=0.5, help="power normalisation exponent")
    f.add_argument("--sketch-dim", type=int, default=2000, help="count-sketch size (0: none)")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=run_fit)

    c = isub.add_parser("encode", help="Fisher vectors (count-sketched) of every video of a manifest")
    _manifest_args(c)
    c.add_argument("--descriptors", required=True, help="folder written by `vidssl idt extract`")
    c.add_argument("--model", required=True, help="model written by `vidssl idt fit`")
    c.add_argument("--out", required=True, help="output .npz: features [N, D] float32, paths, labels, missing")
    c.add_argument("--chunk", type=int, default=4096, help="descriptors per streamed chunk")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=run_encode)


def _load(args):
    from vidssl.data.builtin import open_manifest

    return open_manifest(args.manifest, format=args.format, root=args.root, split=args.split,
                         subset=args.subset, check_files=False)


def run_extract(args) -> int:
    from vidssl.idt.extract import extract_manifest, parse_shard
    from vidssl.idt.options import IDTOptions

    from vidssl.errors import ConfigError

    if args.person == "boxes" and not args.boxes:
        raise ConfigError("--person boxes needs --boxes FILE_OR_FOLDER")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1 (got {args.workers})")
    opts = IDTOptions(flow=args.flow, camera=not args.no_camera, keypoints=args.keypoints, person=args.person,
                      max_short_side=args.max_short_side, max_tracks=args.max_tracks, max_frames=args.max_frames)
    shard = parse_shard(args.shard)
    manifest = _load(args)
    stats = extract_manifest(manifest.paths, args.out, opts, shard=shard, workers=args.workers,
                             boxes=args.boxes if args.person == "boxes" else None,
                             progress=not args.quiet and sys.stderr.isatty())
    secs = max(stats["seconds"], 1e-9)
    print(f"extracted {stats['done']} videos ({stats['frames']} frames, {stats['trajectories']} trajectories, "
          f"{stats['frames'] / secs:.1f} frames/s), {stats['skipped']} already done, "
          f"{len(stats['failed'])} failed")
    for path, why in stats["failed"]:
        print(f"FAILED  {path}: {why}")
    return 0


def run_fit(args) -> int:
    from vidssl.errors import ConfigError, FisherModelError
    from vidssl.idt.fisher import FisherConfig
    from vidssl.idt.pipeline import descriptor_files, fit_fisher

    cfg = FisherConfig(pca=args.pca, variance=args.variance, components=args.components, per_video=args.per_video,
                       max_videos=args.max_videos, normalisation=args.normalisation, alpha=args.alpha,
                       sketch_dim=args.sketch_dim, seed=args.seed)
    files = [f for f in descriptor_files(_load(args).paths, args.descriptors) if f.exists()]
    t = time.perf_counter()
    try:
        model, sampled = fit_fisher(files, cfg)
    except FisherModelError as e:
        raise ConfigError(f"{e} (descriptors: {args.descriptors})") from None
    model.save(args.model)
    dims = ", ".join(str(b.dim) for b in model.blocks)
    print(f"fitted on {sampled} descriptors from {min(len(files), cfg.max_videos)} videos: PCA dims {dims}, "
          f"K={cfg.components}, Fisher vector {model.fv_dim} -> {model.out_dim} "
          f"({time.perf_counter() - t:.1f}s); saved {args.model}")
    return 0


def run_encode(args) -> int:
    from vidssl.idt.fisher import FisherModel
    from vidssl.idt.pipeline import descriptor_files, encode_files, save_encoded

    model = FisherModel.load(args.model)
    manifest = _load(args)
    t = time.perf_counter()
    feats, missing = encode_files(descriptor_files(manifest.paths, args.descriptors), model, args.chunk,
                                  progress=not args.quiet and sys.stderr.isatty())
    out = save_encoded(args.out, feats, manifest.paths, manifest.labels, missing)
    print(f"encoded {len(feats) - int(missing.sum())} videos into {model.out_dim}-d vectors "
          f"({time.perf_counter() - t:.1f}s); {int(missing.sum())} without descriptors (zero rows); saved {out}")
    for i in np.flatnonzero(missing):
        print(f"MISSING  {manifest.paths[i]}")
    return 0
