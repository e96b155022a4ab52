"""Seconds per training step of each rho-method divided by a supervised step on the same clips.

Every method is built from its recipe (``{method}_{suffix}``, the tiny CPU recipes by
default) with the same backbone, and runs full training steps (forward, backward,
optimiser step, ``after_step``: momentum update, queue) on the same random batch
``clips`` (one pathway ``[B, rho, C, T, S, S]``); the supervised baseline (``supervised_tiny``'s method
and optimiser, same backbone) runs the same B x rho clips. The methods are timed
round-robin, several rounds, and each figure is the median of its rounds, so that load
on the (noisy, shared) machine hits all of them alike. The ratio is taken from the best
round of each (load only ever adds time); the median ratio is printed beside it. On a
shared CPU the wall clock also counts time the process waits for a core, so the CPU
time of the process (``time.process_time``; with one thread it is the compute
itself) is measured too and its ratio printed: that is the figure to trust when
other jobs load the machine. Expected ratios (the backbone
dominates): SimCLR and SwAV ~1 (one forward + backward of the B x rho clips, plus the
head); MoCo and BYOL ~1.33 (plus a forward of the momentum encoder, about a third of a
forward + backward).

    python benchmarks/bench_step_ratio.py [--batch 32] [--rho 2] [--rounds 5] [--steps 3]
        [--threads 1] [--suffix tiny] [--device cpu] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from vidssl.config import load_config
from vidssl.data.batch import to_device
from vidssl.engine.loop import train_step
from vidssl.engine.optim import build_optimizer
from vidssl.methods import build_method
from vidssl.methods.base import Progress

METHODS = ["moco", "simclr", "byol", "swav"]
# ratios above these flag a step that costs more than its extra encoder passes explain
LIMITS = {"moco": 1.5, "byol": 1.5, "simclr": 1.2, "swav": 1.2}


def build(recipe: str, overrides: list[str], device: torch.device, num_classes: int):
    cfg = load_config(recipe, overrides)
    torch.manual_seed(0)
    method = build_method(cfg, num_samples=1000, num_classes=num_classes).to(device).train()
    return method, build_optimizer(method, cfg.optim), cfg


def step(method, optimizer, batch, progress) -> None:
    """One engine step (:func:`vidssl.engine.loop.train_step`) at the optimiser's learning rate."""
    train_step(method, method, batch, optimizer, progress, optimizer.param_groups[0]["lr"])
    progress.step += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32, help="videos per step")
    ap.add_argument("--rho", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method per round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--suffix", default="tiny", help="recipes {method}_{suffix}; 'slow_r50' = the paper's")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--override", action="append", default=[], help="key=value for every recipe")
    ap.add_argument("--json", default=None)
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/bench_step_ratio.py`
        from results_doc import add_doc_argument, provenance, section_name, write_section
    except ModuleNotFoundError:  # python -m benchmarks.bench_step_ratio
        from benchmarks.results_doc import add_doc_argument, provenance, section_name, write_section
    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    common = [f"data.views={args.rho}", f"data.batch_size={args.batch}", *args.override]

    methods = {}
    for name in METHODS:
        methods[name] = build(f"{name}_{args.suffix}", common, device, 0)
    cfg0 = methods["moco"][2]
    sup_recipe = "supervised_tiny" if args.suffix == "tiny" else "supervised_slow_r50"
    model_keys = [f"model.backbone={cfg0.model.backbone}", f"model.width={cfg0.model.width}"]
    methods["supervised"] = build(sup_recipe, common + model_keys, device, num_classes=10)

    d = cfg0.data
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(args.batch, args.rho, 3, d.num_frames, d.crop_size, d.crop_size, generator=g)
    batch = to_device({"clips": (clips,), "index": torch.arange(args.batch),
                       "label": torch.randint(0, 10, (args.batch,), generator=g)}, device)
    progress = {name: Progress(steps_per_epoch=1000, epochs=10) for name in methods}
    for name, (method, opt, _) in methods.items():  # warm-up (allocations, first-call overheads)
        step(method, opt, batch, progress[name])

    times = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, (method, opt, _) in methods.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(method, opt, batch, progress[name])
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - t0) / args.steps)
            cpu[name].append((time.process_time() - c0) / args.steps)
    sec = {name: min(v) for name, v in times.items()}
    cpu_sec = {name: min(v) for name, v in cpu.items()}
    med = {name: statistics.median(v) for name, v in times.items()}
    base, base_med = sec["supervised"], med["supervised"]
    print(f"backbone {cfg0.model.backbone} width {cfg0.model.width}, {args.batch} videos x rho {args.rho} = "
          f"{args.batch * args.rho} clips of {d.num_frames}x{d.crop_size}x{d.crop_size}, {device}, "
          f"{args.threads} thread(s), best and median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'method':<11} {'s/step':>8} {'ratio':>6} {'median':>7} {'cpu s':>7} {'cpu ratio':>9} {'limit':>6}")
    rows = {}
    for name in ["supervised", *METHODS]:
        ratio, ratio_med = sec[name] / base, med[name] / base_med
        cpu_ratio = cpu_sec[name] / cpu_sec["supervised"]
        limit = LIMITS.get(name)
        flag = "" if limit is None or min(ratio, cpu_ratio) <= limit else "  ABOVE LIMIT"
        print(f"{name:<11} {sec[name]:8.3f} {ratio:6.2f} {ratio_med:7.2f} {cpu_sec[name]:7.3f} {cpu_ratio:9.2f} "
              f"{'' if limit is None else f'{limit:6.2f}'}{flag}")
        rows[name] = {"seconds_per_step": sec[name], "ratio": ratio, "median_ratio": ratio_med,
                      "cpu_seconds_per_step": cpu_sec[name], "cpu_ratio": cpu_ratio,
                      "rounds": times[name], "cpu_rounds": cpu[name]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": rows}, f, indent=2)
    if args.doc:  # --no-doc: print only. The same table in Markdown
        md = [(f"backbone {cfg0.model.backbone} width {cfg0.model.width}, {args.batch} videos x rho {args.rho} = "
               f"{args.batch * args.rho} clips of {d.num_frames}x{d.crop_size}x{d.crop_size}, {device}, "
               f"{args.threads} thread(s), best and median of {args.rounds} rounds x {args.steps} steps"), "",
              "| method | s/step | ratio | median ratio | cpu s/step | cpu ratio |", "|---|---|---|---|---|---|"]
        md += [f"| {name} | {r['seconds_per_step']:.3f} | {r['ratio']:.2f} | {r['median_ratio']:.2f} "
               f"| {r['cpu_seconds_per_step']:.3f} | {r['cpu_ratio']:.2f} |" for name, r in rows.items()]
        name = section_name("step_ratio", args, ap, ["batch", "rho", "rounds", "steps", "threads", "suffix", "device",
                                                     "override"])
        path = write_section(name, "\n".join(md) + "\n\n" + provenance(), args.doc_path)
        print(f"wrote section {name} of {path}")


if __name__ == "__main__":
    main()
