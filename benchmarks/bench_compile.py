"""``model.compile=true`` on the CPU: a method's training step compiled with inductor
against the same step eager, side by side in one run.

    python benchmarks/bench_compile.py [--methods supervised,simclr,ir] [--seconds 20] [--threads 2]

Each method's tiny recipe (``{method}_tiny``: 3D ResNet-18 at width 16, 8 x 64 x 64 clips,
or the recipe's own backbone) on a fixed random batch, through the engine's
:func:`vidssl.engine.loop.train_step` (``benchmarks/device_steps.py``, the code the GPU
check times): eager, compiled (the first step is the compilation, reported as
``compile s``), eager again; the eager figure is the better of the two timings, so that a
drift of the machine's load shows as their spread. The GPU figures (bf16, channels-last)
come from ``benchmarks/device_check.py``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import device_steps  # noqa: E402


def measure(name: str, compile_: bool, seconds: float, clips: int) -> dict:
    return device_steps.step_speed(name, {"channels_last": False, "compile": compile_}, size="tiny", quick=False,
                                   clips=clips, bank=1024, device=torch.device("cpu"), seconds=seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="supervised,simclr,ir")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per figure")
    ap.add_argument("--clips", type=int, default=16, help="clips per step")
    ap.add_argument("--threads", type=int, default=2)
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    lines = ["| method | backbone | clip | eager clips/s | compiled clips/s | speed-up | compile s |",
             "|---|---|---|---|---|---|---|"]
    for name in [m for m in args.methods.split(",") if m]:
        first = measure(name, False, args.seconds, args.clips)
        compiled = measure(name, True, args.seconds, args.clips)
        second = measure(name, False, args.seconds, args.clips)
        eager = max(first["clips_per_s"], second["clips_per_s"])
        spread = abs(first["clips_per_s"] - second["clips_per_s"]) / eager
        lines.append(f"| {name} | {first['recipe_backbone']} (width {first['width']}) | {first['clip']} | "
                     f"{eager:.1f} (spread {spread:.0%}) | {compiled['clips_per_s']:.1f} | "
                     f"{compiled['clips_per_s'] / eager:.2f}x | {compiled['warmup_s']:.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + (f"\n\nfp32, {args.clips} clips per step, torch threads: {args.threads}; compile s: "
                               "the first compiled step, inductor's code generation included (inductor keeps "
                               "generated code in an on-disk cache: a graph compiled before, by an earlier row "
                               "or run, compiles in seconds).")
    print("\n" + text)
    if args.doc:
        write_section("compile", text + "\n\n" + provenance((time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
