"""Throughput of every backbone: clips/s for training (forward + backward) and forward-only.

Two settings:
  tiny   width 16, 8 x 64 x 64 clips, batch 8 (the CPU recipes; train and forward);
         SlowFast gets 2 + 8 frames (slow + fast), TRN 4 segment frames
  paper  width 64 at the papers' input sizes (r3d18 / r2plus1d18 16 x 112^2, Slow and
         the 2D net 8 x 224^2, SlowFast 8 + 32 x 224^2, TRN 4 x 224^2), forward-only with
         batch 1-2 (a laptop CPU cannot train these)

``--vie``: instead, every VIE family (the ``vie_<family>_la_tiny`` and ``vie_<family>_la`` recipes:
ResNet-18v2, each family's frames and crop from its recipe's sampler) at tiny and at paper sizes side
by side, training and forward, tiny with batch 8 and paper with ``--paper-batch`` (2):

    python benchmarks/bench_backbones.py --vie [--families single,slow] [--paper-batch 2] [--skip-paper]
        [--json rows.json] [--from-json rows.json] [--no-doc]

(its table goes to docs/results.md, section ``backbones_vie``; ``--from-json`` rebuilds it from the
rows of an earlier ``--json`` without measuring).

Also measured side by side: r3d18 tiny with ``channels_last=False``, to show what the
channels-last-3d layout buys on CPU. Each figure is the best of 3 rounds within about
``--seconds`` after a warm-up step; machines are noisy (2 shared cores), so compare
ratios within one run.

    python benchmarks/bench_backbones.py [--threads 2] [--seconds 3] [--only r3d18,slow_r50]
        [--skip-paper] [--json out.json] [--compare-omp-wait]

On a shared (oversubscribed) CPU, OpenMP threads that spin while waiting for a
descheduled sibling slow PyTorch down by 10x or more; ``OMP_WAIT_POLICY=PASSIVE``
(set before Python starts) avoids it. ``--compare-omp-wait`` measures r3d18 tiny
training under ACTIVE and PASSIVE in two fresh processes, side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from vidssl.models import BACKBONES, build_backbone

TINY = dict(width=16, size=(8, 64, 64), batch=8)
PAPER = {  # backbone -> (input T x H x W, batch)
    "r3d18": ((16, 112, 112), 2),
    "r3d34": ((16, 112, 112), 1),
    "r2plus1d18": ((16, 112, 112), 1),
    "slow_r18": ((8, 224, 224), 1),
    "slow_r50": ((8, 224, 224), 1),
    "resnet2d18": ((8, 224, 224), 2),
    "slowfast_r18": ((32, 224, 224), 1),  # Fast pathway T; the Slow pathway gets T / 4
    "slowfast_r50": ((32, 224, 224), 1),
    "trn": ((4, 224, 224), 2),  # VIE-TRN: 4 segment frames
    "twostream_s": ((4, 224, 224), 1),  # VIE-TwoStream-S: the Slow clip (its centre frame for the 2D stream)
    "twostream_sf": ((16, 224, 224), 1),  # Fast pathway T, as SlowFast
}
VIE_FAMILIES = ["single", "3dresnet", "trn", "slow", "slowfast", "twostream_s", "twostream_sf"]
TINY_T = {"trn": 4}  # backbones whose tiny clip length differs from 8


def make_input(name: str, batch: int, size: tuple):
    """Random pathways for ``name``: one clip tensor, or (slow, fast) for SlowFast (T = Fast frames)."""
    if name.startswith("slowfast") or name == "twostream_sf":
        t, h, w = size
        return (torch.randn(batch, 3, t // 4, h, w), torch.randn(batch, 3, t, h, w))
    return (torch.randn(batch, 3, *size),)


def clips_per_second(step, batch: int, seconds: float, rounds: int = 3) -> float:
    """Best rate over ``rounds`` rounds of about ``seconds / rounds`` each (at least one step
    per round), after one warm-up step. The best round is the figure least disturbed by
    other processes on a shared machine."""
    step()
    best = 0.0
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while n < 1 or time.perf_counter() - start < seconds / rounds:
            step()
            n += 1
        best = max(best, batch * n / (time.perf_counter() - start))
    return best


def recipe_input(recipe: str, batch: int):
    """(backbone name, width, options, pathways) of ``recipe``: random clips of the lengths its sampler
    gives (one view) at its crop size."""
    import numpy as np

    from vidssl.config import in_channels, load_config
    from vidssl.data.sampling import train_clip_indices

    cfg = load_config(recipe)
    lengths = [len(p) for p in train_clip_indices(np.random.default_rng(0), 250, 25.0, cfg.data)[0]]
    s, c = cfg.data.crop_size, in_channels(cfg.data.modality)
    clips = tuple(torch.randn(batch, c, t, s, s) for t in lengths)
    return cfg.model.backbone, cfg.model.width, dict(cfg.model.options), clips


def measure(name: str, width: int, size: tuple, batch: int, seconds: float, train: bool, x: tuple | None = None,
            **options) -> dict:
    torch.manual_seed(0)
    model = build_backbone(name, width=width, **options)
    x = make_input(name, batch, size) if x is None else x
    row = {"backbone": name + "".join(f" {k}={v}" for k, v in options.items()), "width": width,
           "input": "x".join(map(str, size)), "batch": batch,
           "params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def train_step():
            opt.zero_grad(set_to_none=True)
            model(*x).square().mean().backward()
            opt.step()

        row["train_clips_s"] = clips_per_second(train_step, batch, seconds)
    model.eval()

    @torch.no_grad()
    def forward_step():
        model(*x)

    row["forward_clips_s"] = clips_per_second(forward_step, batch, seconds)
    return row


def print_table(rows: list[dict]) -> None:
    head = (f"{'backbone':<32} {'width':>5} {'input':>11} {'batch':>5} {'params':>8} "
            f"{'train clips/s':>14} {'fwd clips/s':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        train = f"{r['train_clips_s']:.1f}" if "train_clips_s" in r else "-"
        print(f"{r['backbone']:<32} {r['width']:>5} {r['input']:>11} {r['batch']:>5} {r['params_M']:>7.2f}M "
              f"{train:>14} {r['forward_clips_s']:>12.2f}")


def measure_vie(families: list[str], seconds: float, paper_batch: int, skip_paper: bool) -> list[dict]:
    """Every VIE family at its tiny recipe's and its paper recipe's sizes, train + forward, side by side."""
    rows = []
    for fam in families:
        row = {"family": fam}
        for size, recipe, batch in (("tiny", f"vie_{fam}_la_tiny", 8), ("paper", f"vie_{fam}_la", paper_batch)):
            if size == "paper" and skip_paper:
                continue
            name, width, options, clips = recipe_input(recipe, batch)
            shape = "+".join(str(c.shape[2]) for c in clips) + f"x{clips[0].shape[-1]}^2"
            r = measure(name, width, tuple(clips[-1].shape[2:]), batch, seconds, train=True, x=clips, **options)
            row.update({f"{size}_backbone": name, f"{size}_input": shape, f"{size}_batch": batch,
                        f"{size}_params_M": r["params_M"], f"{size}_train_clips_s": r["train_clips_s"],
                        f"{size}_forward_clips_s": r["forward_clips_s"]})
            print(f"  {fam} {size}: {shape}, train {r['train_clips_s']:.2f} clips/s, "
                  f"forward {r['forward_clips_s']:.2f} clips/s", flush=True)
        rows.append(row)
    return rows


def print_vie_table(rows: list[dict]) -> None:
    head = (f"{'family':<13} {'tiny input':>11} {'params':>7} {'train':>7} {'fwd':>7}   "
            f"{'paper input':>12} {'params':>7} {'train':>7} {'fwd':>7}  {'tiny/paper train':>16}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        line = (f"{r['family']:<13} {r['tiny_input']:>11} {r['tiny_params_M']:>6.2f}M {r['tiny_train_clips_s']:>7.1f} "
                f"{r['tiny_forward_clips_s']:>7.1f}   ")
        if "paper_input" in r:
            line += (f"{r['paper_input']:>12} {r['paper_params_M']:>6.2f}M {r['paper_train_clips_s']:>7.2f} "
                     f"{r['paper_forward_clips_s']:>7.2f}  {'x%.0f' % (r['tiny_train_clips_s'] / r['paper_train_clips_s']):>16}")
        print(line)


def vie_markdown(rows: list[dict], paper_batch: int) -> str:
    """The --vie table as Markdown: per family, tiny and paper input, parameters, train / forward clips/s."""
    lines = [f"| family | tiny input | params | train clips/s | forward clips/s | paper input (batch {paper_batch}) | "
             "params | train clips/s | forward clips/s |", "|---" * 9 + "|"]
    for r in rows:
        cells = [r["family"], r["tiny_input"], f"{r['tiny_params_M']:.2f}M", f"{r['tiny_train_clips_s']:.1f}",
                 f"{r['tiny_forward_clips_s']:.1f}"]
        if "paper_input" in r:
            cells += [r["paper_input"], f"{r['paper_params_M']:.2f}M", f"{r['paper_train_clips_s']:.2f}",
                      f"{r['paper_forward_clips_s']:.2f}"]
        else:
            cells += ["–"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--only", default=",".join(BACKBONES), help="comma-separated backbone names")
    ap.add_argument("--skip-paper", action="store_true", help="only the tiny setting")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--compare-omp-wait", action="store_true",
                    help="only compare OMP_WAIT_POLICY=ACTIVE and PASSIVE on r3d18 tiny training")
    ap.add_argument("--vie", action="store_true", help="the VIE families at tiny and paper sizes, train + forward")
    ap.add_argument("--families", default=",".join(VIE_FAMILIES), help="--vie: comma-separated VIE families")
    ap.add_argument("--paper-batch", type=int, default=2, help="--vie: batch at paper sizes")
    ap.add_argument("--from-json", help="--vie: the rows of an earlier --json run instead of measuring")
    from results_doc import add_doc_argument, provenance, section_name, write_section

    add_doc_argument(ap)
    args = ap.parse_args(argv)
    if args.compare_omp_wait:
        return compare_omp_wait(args)
    torch.set_num_threads(args.threads)
    if args.vie:
        fams = [f for f in args.families.split(",") if f]
        bad = [f for f in fams if f not in VIE_FAMILIES]
        if bad:
            raise SystemExit(f"unknown VIE family {bad[0]!r} (allowed: {', '.join(VIE_FAMILIES)})")
        start, load = time.time(), os.getloadavg()[0]
        if args.from_json:
            with open(args.from_json) as f:
                rows = [r for r in json.load(f) if r["family"] in fams]
        else:
            print(f"torch {torch.__version__}, {args.threads} threads, best of 3 rounds in ~{args.seconds:g} s per "
                  f"figure; load average {load:.1f} on {os.cpu_count()} CPUs")
            rows = measure_vie(fams, args.seconds, args.paper_batch, args.skip_paper)
            load = max(load, os.getloadavg()[0])
        print("\nVIE families, clips/s (tiny: width 16, batch 8; paper: width 64, batch "
              f"{args.paper_batch}; input = frames per pathway x crop)")
        print_vie_table(rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        if args.doc:
            note = "" if args.from_json else f"load average up to {load:.1f} on {os.cpu_count()} CPUs"
            write_section(section_name("backbones_vie", args, ap, ["paper_batch", "seconds", "threads"]),
                          vie_markdown(rows, args.paper_batch) + "\n\n" + provenance((time.time() - start) / 60, note),
                          args.doc_path)
        return None
    names = [n for n in args.only.split(",") if n]
    print(f"torch {torch.__version__}, {args.threads} threads, best of 3 rounds in ~{args.seconds:g} s per figure")
    load_before = os.getloadavg()[0]
    print(f"load average {load_before:.1f} on {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}\n")

    rows = []
    for name in names:
        size = (TINY_T.get(name, TINY["size"][0]), *TINY["size"][1:])
        rows.append(measure(name, TINY["width"], size, TINY["batch"], args.seconds, train=True))
        if name == "r3d18":  # the layout ablation, measured right next to the default
            rows.append(measure(name, TINY["width"], TINY["size"], TINY["batch"], args.seconds, train=True,
                                channels_last=False))
    print("tiny setting (width 16, 64x64, batch 8; input = frames, SlowFast: the Fast pathway's)")
    print_table(rows)
    tiny = {r["backbone"]: r for r in rows}
    if "r3d18" in tiny:
        base, plain = tiny["r3d18"], tiny["r3d18 channels_last=False"]
        print(f"\nr3d18 tiny training: {base['train_clips_s']:.1f} clips/s (target >= 30); "
              f"channels_last speed-up: train x{base['train_clips_s'] / plain['train_clips_s']:.2f}, "
              f"forward x{base['forward_clips_s'] / plain['forward_clips_s']:.2f}")

    if not args.skip_paper:
        paper = []
        for name in names:
            if name in PAPER:
                size, batch = PAPER[name]
                paper.append(measure(name, 64, size, batch, args.seconds, train=False))
        print("\npaper setting (width 64, forward only)")
        print_table(paper)
        rows += paper
    load = max(load_before, os.getloadavg()[0])
    if load > args.threads + 0.5:  # other processes competed for the cores: figures are not trustworthy
        print(f"\nWARNING: load average reached {load:.1f} during the run (> {args.threads} threads): "
              "the machine was shared, re-run when it is idle")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def compare_omp_wait(args) -> None:
    """r3d18 tiny, train + forward, in one fresh process per OpenMP wait policy (alternated twice)."""
    best = {}
    for policy in ["ACTIVE", "PASSIVE"] * 2:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.json")
            subprocess.run([sys.executable, __file__, "--only", "r3d18", "--skip-paper", "--threads", str(args.threads),
                            "--seconds", str(args.seconds), "--json", out],
                           env={**os.environ, "OMP_WAIT_POLICY": policy}, check=True, stdout=subprocess.DEVNULL)
            with open(out) as f:
                row = json.load(f)[0]
        old = best.get(policy, {"train_clips_s": 0.0, "forward_clips_s": 0.0})
        best[policy] = {k: max(old[k], row[k]) for k in old}
    for policy, r in best.items():
        print(f"OMP_WAIT_POLICY={policy:<8} r3d18 tiny: train {r['train_clips_s']:.1f} clips/s, "
              f"forward {r['forward_clips_s']:.1f} clips/s")
    print(f"PASSIVE / ACTIVE: train x{best['PASSIVE']['train_clips_s'] / best['ACTIVE']['train_clips_s']:.2f}, "
          f"forward x{best['PASSIVE']['forward_clips_s'] / best['ACTIVE']['forward_clips_s']:.2f} "
          f"(load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
