"""Time of the frozen-feature evaluation of a tiny model, in seconds per 100 videos.

The built-in dataset (64 x 64 px, 64 frames; ``--videos`` in all, 70 % train / 30 %
test) is rendered into a temporary folder (or taken from ``--data``); the encoder is
``supervised_tiny`` (3D ResNet-18, width 16, 8 x 56 x 56 clips, 4 test clips per
video, the recipe's input modality) with frozen random weights. Measured in one run, features not cached:

  features   decoding + multi-view feature extraction of the train and test videos
  knn        weighted kNN (k = 200, tau = 0.07) on the extracted features
  linear     the linear probe (``eval.linear_epochs``) on the extracted features

Each line gives the seconds and the seconds per 100 videos (train + test). These
machines are noisy: compare the lines of one run, e.g. how much of the total the
feature extraction takes.

    python benchmarks/bench_eval.py [--videos 60] [--threads 2] [--data DIR] [key=value ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=60, help="videos of the built-in dataset (default 60)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--data", default=None, help="an existing built-in dataset folder (else a temporary one)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of supervised_tiny")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vidssl.data.synthetic import make_synthetic
    from vidssl.eval import knn, linear
    from vidssl.eval.features import make_context

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data) if args.data else Path(tmp) / "synth"
        t0 = time.perf_counter()
        manifests = make_synthetic(folder, videos=args.videos, seed=0)
        print(f"built-in dataset: {args.videos} videos ready in {time.perf_counter() - t0:.1f} s ({folder})")
        overrides = ["eval.cache=false", "data.workers=0", *args.overrides]
        ctx = make_context("random", str(manifests["train"]), str(manifests["test"]), overrides, progress=False,
                           recipe="supervised_tiny")
        n = len(ctx.train) + len(ctx.test)
        # the first optimiser built in a process imports torch._dynamo (seconds): not part of the evaluation
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        timings = {}
        t = time.perf_counter()
        ctx.features("train")
        ctx.features("test")
        timings["features"] = time.perf_counter() - t
        t = time.perf_counter()
        knn_top1 = knn.evaluate(ctx)["top1"]
        timings["knn"] = time.perf_counter() - t
        t = time.perf_counter()
        linear_top1 = linear.evaluate(ctx)["top1"]
        timings["linear"] = time.perf_counter() - t
        timings["total"] = sum(timings.values())
        d = ctx.cfg.data
        print(f"supervised_tiny, random weights: {n} videos ({len(ctx.train)} train, {len(ctx.test)} test), "
              f"{d.test_clips} x {d.test_crops} views of {d.num_frames} x {d.crop_size}^2 ({d.modality}), "
              f"{torch.get_num_threads()} threads, linear {ctx.cfg.eval.linear_epochs} epochs")
        for name, sec in timings.items():
            share = f"  ({100 * sec / timings['total']:.0f} % of the total)" if name != "total" else ""
            print(f"  {name:<9} {sec:7.2f} s   {100 * sec / n:7.2f} s per 100 videos{share}")
        print(f"  (accuracies of random weights, for sanity only: kNN {knn_top1:.3f}, linear {linear_top1:.3f})")


if __name__ == "__main__":
    main()
