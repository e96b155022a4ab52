"""Seconds per video CPC training step divided by a supervised step of the same encoder on
the same segments (what the context model, the predictors and the NCE over all B x T
candidates add to the encoder's forward + backward).

Both are built from recipes with the same backbone (``cpc_tiny``'s stacked-frame 2D
ResNet-18 by default; ``--recipe cpc_ucf101`` for the paper's size) and run full engine
steps on one random batch ``[B, T, C, F, S, S]``: CPC on it as it is, the supervised
method on the same B x T segments as separate clips. Timed round-robin, best of
``--rounds``; wall and CPU time (``time.process_time``, the figure to trust on a loaded
machine) are both printed.

    python benchmarks/bench_cpc_step.py [--recipe cpc_tiny] [--batch 16] [--rounds 5] [--steps 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step_ratio import build, step  # noqa: E402

from vidssl.data.batch import to_device  # noqa: E402
from vidssl.methods.base import Progress  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="cpc_tiny")
    ap.add_argument("--batch", type=int, default=16, help="videos per step")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modality", default="diff", choices=["rgb", "diff", "flow"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    common = [f"data.batch_size={args.batch}", f"data.modality={args.modality}"]
    cpc = build(args.recipe, common, device, 0)
    cfg = cpc[2]
    d, segments = cfg.data, cfg.data.views
    sup_keys = [f"model.backbone={cfg.model.backbone}", f"model.width={cfg.model.width}",
                f"model.options.frames={cfg.model.options.get('frames', d.num_frames)}", "data.views=1",
                f"data.batch_size={args.batch * segments}", f"data.num_frames={d.num_frames}",
                f"data.modality={args.modality}"]
    methods = {"cpc": cpc, "supervised": build("supervised_tiny", sup_keys, device, num_classes=10)}
    channels = 2 if args.modality == "flow" else 3
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(args.batch, segments, channels, d.num_frames, d.crop_size, d.crop_size, generator=g)
    n = args.batch * segments
    batches = {
        "cpc": to_device({"clips": (clips,), "index": torch.arange(args.batch),
                          "label": torch.full((args.batch,), -1)}, device),
        "supervised": to_device({"clips": (clips.reshape(n, 1, *clips.shape[2:]),), "index": torch.arange(n),
                                 "label": torch.randint(0, 10, (n,), generator=g)}, device),
    }
    progress = {name: Progress(steps_per_epoch=1000, epochs=10) for name in methods}
    for name, (method, opt, _) in methods.items():
        step(method, opt, batches[name], progress[name])
    wall = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, (method, opt, _) in methods.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(method, opt, batches[name], progress[name])
            wall[name].append((time.perf_counter() - t0) / args.steps)
            cpu[name].append((time.process_time() - c0) / args.steps)
    best = {k: min(v) for k, v in wall.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    print(f"{args.recipe}: {cfg.model.backbone} width {cfg.model.width}, {args.batch} videos x {segments} segments "
          f"of {channels} x {d.num_frames} x {d.crop_size}^2 ({args.modality}), {args.threads} thread(s), "
          f"best of {args.rounds} rounds x {args.steps} steps")
    for name in ("supervised", "cpc"):
        print(f"  {name:<11} {best[name]:.3f} s/step ({n / best[name]:.0f} segments/s), cpu {best_cpu[name]:.3f} s")
    print(f"  CPC / supervised: wall {best['cpc'] / best['supervised']:.2f}, "
          f"cpu {best_cpu['cpc'] / best_cpu['supervised']:.2f}")


if __name__ == "__main__":
    main()
