"""The rho table on the built-in dataset: rho-MoCo / SimCLR / BYOL / SwAV for rho in {1, 2, 3}.

The large-scale study's Table 2 in miniature: each method is pretrained with its tiny
CPU recipe (``{method}_tiny``: 3D ResNet-18 width 16, 8 x 56 x 56 clips) on the
unlabelled training videos of the built-in dataset, then evaluated frozen with the
linear probe (``vidssl eval linear``) on the motion labels of the test videos. rho = 1
is the paper's row of two crops of the same clip (``data.views=2 data.t_max=0``);
rho >= 2 samples the clips anywhere in the video (``data.views=rho``, global
sampling). The same backbone with random weights and the supervised baseline
(``supervised_tiny``) are the reference rows. One table, one run; a second table gives
the temporal persistence of each encoder (``vidssl eval persistence``: the share of test
clips whose nearest other clip is of the same video), what rho >= 2 is meant to raise.

    python benchmarks/bench_rho_methods.py [--methods moco,simclr,byol,swav] [--rhos 1,2,3]
        [--epochs N] [--seeds 0,1] [--out /tmp/vidssl_rho] [--appearance] [--camera 0.75] [--wander 1.5]
        [--threads 2]
        [--json out.json]

``--camera SPEED`` renders the built-in dataset with a panning camera
(:mod:`vidssl.data.synthetic`, "Camera motion") into ``OUT/data`` and runs the whole
table on it: the still-camera dataset has no nuisance that changes over time.
``--wander SPEED`` adds a distractor that changes course every 16 frames (the same module,
"Wandering distractor"); both may be given.

Runs are resumed from ``--out`` (seed 0) and ``--out/seedN`` when they exist (delete them
to start over). Several ``--seeds`` print mean ± std over the seeds and, per seed, the
difference rho=2 - rho=1 (the paper's central comparison; 90 test videos: one video is
0.011).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from vidssl.config import load_config
from vidssl.data.builtin import resolve_builtin
from vidssl.data.synthetic import make_synthetic
from vidssl.engine.trainer import train
from vidssl.eval.features import make_context
from vidssl.eval.protocols import evaluate_context, resolve_checkpoint

METHODS = ["moco", "simclr", "byol", "swav"]
NAMES = {"moco": "rho-MoCo", "simclr": "rho-SimCLR", "byol": "rho-BYOL", "swav": "rho-SwAV"}


def rho_overrides(rho: int) -> list[str]:
    """rho = 1: two crops of the same clip (Table 2's first row); rho >= 2: rho clips anywhere."""
    return ["data.views=2", "data.t_max=0"] if rho == 1 else [f"data.views={rho}", "data.t_max=null"]


def measure(checkpoint: str, train_csv: str, test_csv: str, columns, recipe: str | None = None,
            overrides: list[str] = ()) -> dict[str, float]:
    """Linear-probe top-1 per label column, and the temporal persistence of the test clips
    (``vidssl eval persistence``; label-free, so it shares the first column's features)."""
    out = {}
    for i, (name, column) in enumerate(columns):
        ctx = make_context(resolve_checkpoint(checkpoint), train_csv, test_csv, list(overrides), column,
                           progress=False, recipe=recipe)
        out[name] = evaluate_context("linear", ctx)["top1"]
        if i == 0:
            persistence = evaluate_context("persistence", ctx)["persistence_top1"]
    return {**out, "persistence": persistence}


def cell(values: list[float]) -> str:
    """One seed: the value; several: mean +- standard deviation over the seeds."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--rhos", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipes' train.epochs")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; several give mean ± std and the "
                                                 "rho=2 - rho=1 difference per seed")
    ap.add_argument("--out", default="/tmp/vidssl_rho")
    ap.add_argument("--appearance", action="store_true", help="also probe the appearance (scene) labels")
    ap.add_argument("--no-baselines", action="store_true", help="skip the random-init and supervised rows")
    ap.add_argument("--camera", type=float, default=0.0,
                    help="camera pan speed of the built-in dataset (px/frame; 0: the standard still camera)")
    ap.add_argument("--wander", type=float, default=0.0,
                    help="speed of a distractor that changes course every 16 frames (px/frame; 0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--override", action="append", default=[], help="key=value for every pretraining recipe")
    ap.add_argument("--json", default=None)
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/bench_rho_methods.py`
        from results_doc import add_doc_argument, provenance, section_name, write_section
    except ModuleNotFoundError:  # python -m benchmarks.bench_rho_methods
        from benchmarks.results_doc import add_doc_argument, provenance, section_name, write_section
    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    methods = [m for m in args.methods.split(",") if m]
    rhos = [int(r) for r in args.rhos.split(",") if r]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    if not seeds or not methods or not rhos:
        ap.error("--seeds, --methods and --rhos each need at least one value")
    common = ["train.progress=false", *args.override]
    if args.camera > 0 or args.wander > 0:
        data = make_synthetic(out / "data", camera=args.camera, wander=args.wander, workers=args.threads)
        train_csv, test_csv = str(data["train"]), str(data["test"])
        common.append(f"data.train={train_csv}")
    else:
        train_csv, test_csv = resolve_builtin("builtin:train"), resolve_builtin("builtin:test")
    columns = [("motion", "label")] + ([("appearance", "appearance")] if args.appearance else [])
    if args.epochs is not None:
        common.append(f"train.epochs={args.epochs}")

    results: dict[int, dict[str, dict]] = {seed: {} for seed in seeds}  # seed -> run -> label kind -> top-1
    seconds: dict[str, float] = {}
    start = time.time()

    def run(seed: int, key: str, recipe: str, overrides: list[str]) -> None:
        t0 = time.time()
        cfg = load_config(recipe, [f"train.seed={seed}", *common, *overrides])
        run_dir = train(cfg, run_dir=(out if seed == 0 else out / f"seed{seed}") / key, resume=True)
        t_train = time.time() - t0
        ckpt = str(Path(run_dir) / "checkpoints" / "last.pt")
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        seconds[f"{key}_seed{seed}"] = summary["seconds"]
        results[seed][key] = measure(ckpt, train_csv, test_csv, columns)
        print(f"[rho] seed {seed} {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[seed][key].items())
              + f"  (train {summary['seconds']:.0f} s, eval {time.time() - t0 - t_train:.0f} s)",
              flush=True)

    for seed in seeds:
        if not args.no_baselines:
            results[seed]["random"] = measure("random", train_csv, test_csv, columns, "supervised_tiny",
                                              [f"train.seed={seed}"])
            print(f"[rho] seed {seed} random init: {results[seed]['random']}", flush=True)
        for rho in rhos:  # rho-major, in the order given: e.g. --rhos 2,1,3 gets the central pairs first
            for m in methods:
                run(seed, f"{m}_rho{rho}", f"{m}_tiny", rho_overrides(rho))
        if not args.no_baselines:
            run(seed, "supervised", "supervised_tiny", [])
    rhos = sorted(rhos)

    def values(key: str, name: str) -> list[float]:
        return [results[seed][key][name] for seed in seeds]

    paired = 1 in rhos and 2 in rhos and len(seeds) > 1
    print(f"\nFrozen 3D R-18 width 16 on the built-in test videos (seeds {seeds}"
          f"{'; camera ' + str(args.camera) if args.camera > 0 else ''}"
          f"{'; wander ' + str(args.wander) if args.wander > 0 else ''}; {time.time() - start:.0f} s in all)")
    tables = [(name, f"{name} labels: linear probe top-1") for name, _ in columns]
    tables.append(("persistence", "temporal persistence: share of test clips (4 a video) whose nearest other clip "
                                  "is of the same video; chance 3 / (4 N - 1), 0.008 for N = 90"))
    doc: list[str] = []  # the printed tables, for docs/results.md

    def show(line: str) -> None:
        print(line)
        doc.append(line)

    for name, title in tables:
        show(f"\n{title}\n")
        extra = " rho=2 - rho=1 per seed |" if paired else ""
        show("| method | " + " | ".join(f"rho={r}" for r in rhos) + " |" + extra)
        show("|---|" + "---|" * (len(rhos) + bool(paired)))
        for m in methods:
            cells = [cell(values(f"{m}_rho{r}", name)) for r in rhos]
            if paired:
                diffs = [b - a for a, b in zip(values(f"{m}_rho1", name), values(f"{m}_rho2", name))]
                cells.append(" ".join(f"{d:+.3f}" for d in diffs))
            show(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
        for key, label in (("random", "random init"), ("supervised", "supervised")):
            if key in results[seeds[0]]:
                show(f"| {label} | {cell(values(key, name))} |" + " |" * (len(rhos) - 1 + bool(paired)))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": {str(k): v for k, v in results.items()},
                                               "train_seconds": seconds, "args": vars(args)}, indent=2) + "\n")
    if args.doc:  # --no-doc: print only
        name = section_name("rho_methods", args, ap, ["methods", "rhos", "epochs", "seeds", "camera", "wander",
                                                      "no_baselines", "override"])
        path = write_section(name, "\n".join(doc).strip() + "\n\n" + provenance((time.time() - start) / 60),
                             args.doc_path)
        print(f"\n[rho] wrote section {name} of {path}")


if __name__ == "__main__":
    main()
