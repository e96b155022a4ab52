"""The rho table on the built-in dataset: rho-MoCo / SimCLR / BYOL / SwAV for rho in {1, 2, 3}.

The large-scale study's Table 2 in miniature: each method is pretrained with its tiny
CPU recipe (``{method}_tiny``: 3D ResNet-18 width 16, 8 x 56 x 56 clips) on the
unlabelled training videos of the built-in dataset, then evaluated frozen with the
linear probe (``vidssl eval linear``) on the motion labels of the test videos. rho = 1
is the paper's row of two crops of the same clip (``data.views=2 data.t_max=0``);
rho >= 2 samples the clips anywhere in the video (``data.views=rho``, global
sampling). The same backbone with random weights and the supervised baseline
(``supervised_tiny``) are the reference rows. One table, one run.

    python benchmarks/bench_rho_methods.py [--methods moco,simclr,byol,swav] [--rhos 1,2,3]
        [--epochs N] [--out /tmp/vidssl_rho] [--appearance] [--camera 0.75] [--threads 2] [--json out.json]

``--camera SPEED`` renders the built-in dataset with a panning camera
(:mod:`vidssl.data.synthetic`, "Camera motion") into ``OUT/data`` and runs the whole
table on it: the still-camera dataset has no nuisance that changes over time.

Runs are resumed from ``--out`` when they exist (delete it to start over).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidssl.commands.evaluate import evaluate
from vidssl.config import load_config
from vidssl.data.builtin import resolve_builtin
from vidssl.data.synthetic import make_synthetic
from vidssl.engine.trainer import train

METHODS = ["moco", "simclr", "byol", "swav"]
NAMES = {"moco": "rho-MoCo", "simclr": "rho-SimCLR", "byol": "rho-BYOL", "swav": "rho-SwAV"}


def rho_overrides(rho: int) -> list[str]:
    """rho = 1: two crops of the same clip (Table 2's first row); rho >= 2: rho clips anywhere."""
    return ["data.views=2", "data.t_max=0"] if rho == 1 else [f"data.views={rho}", "data.t_max=null"]


def probe(checkpoint: str, train_csv: str, test_csv: str, column: str, recipe: str | None = None,
          overrides: list[str] = ()) -> float:
    return evaluate("linear", checkpoint, train_csv, test_csv, list(overrides), column, progress=False,
                    recipe=recipe)["top1"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--rhos", default="1,2,3")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipes' train.epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/vidssl_rho")
    ap.add_argument("--appearance", action="store_true", help="also probe the appearance (scene) labels")
    ap.add_argument("--no-baselines", action="store_true", help="skip the random-init and supervised rows")
    ap.add_argument("--camera", type=float, default=0.0,
                    help="camera pan speed of the built-in dataset (px/frame; 0: the standard still camera)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--override", action="append", default=[], help="key=value for every pretraining recipe")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    methods = [m for m in args.methods.split(",") if m]
    rhos = [int(r) for r in args.rhos.split(",") if r]
    if args.camera > 0:
        data = make_synthetic(out / "data", camera=args.camera, workers=args.threads)
        train_csv, test_csv = str(data["train"]), str(data["test"])
    else:
        train_csv, test_csv = resolve_builtin("builtin:train"), resolve_builtin("builtin:test")
    columns = [("motion", "label")] + ([("appearance", "appearance")] if args.appearance else [])
    common = [f"train.seed={args.seed}", "train.progress=false", *args.override]
    if args.camera > 0:
        common.append(f"data.train={train_csv}")
    if args.epochs is not None:
        common.append(f"train.epochs={args.epochs}")

    results: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    start = time.time()

    def run(key: str, recipe: str, overrides: list[str]) -> None:
        t0 = time.time()
        cfg = load_config(recipe, common + overrides)
        run_dir = train(cfg, run_dir=out / key, resume=True)
        t_train = time.time() - t0
        ckpt = str(Path(run_dir) / "checkpoints" / "last.pt")
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        seconds[key] = summary["seconds"]
        results[key] = {name: probe(ckpt, train_csv, test_csv, col) for name, col in columns}
        print(f"[rho] {key}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[key].items())
              + f"  (train {summary['seconds']:.0f} s, eval {time.time() - t0 - t_train:.0f} s)",
              flush=True)

    if not args.no_baselines:
        results["random"] = {name: probe("random", train_csv, test_csv, col, recipe="supervised_tiny",
                                         overrides=[f"train.seed={args.seed}"]) for name, col in columns}
        print(f"[rho] random init: {results['random']}", flush=True)
    for rho in rhos:  # rho-major, in the order given: e.g. --rhos 2,1,3 gets the central pairs first
        for m in methods:
            run(f"{m}_rho{rho}", f"{m}_tiny", rho_overrides(rho))
    if not args.no_baselines:
        run("supervised", "supervised_tiny", [])
    rhos = sorted(rhos)

    print(f"\nLinear probe top-1 on the built-in test videos (frozen 3D R-18 width 16; "
          f"{time.time() - start:.0f} s in all)")
    for name, _ in columns:
        print(f"\n{name} labels")
        print("| method | " + " | ".join(f"rho={r}" for r in rhos) + " |")
        print("|---|" + "---|" * len(rhos))
        for m in methods:
            cells = [f"{results[f'{m}_rho{r}'][name]:.3f}" for r in rhos]
            print(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
        for key, label in (("random", "random init"), ("supervised", "supervised")):
            if key in results:
                print(f"| {label} | {results[key][name]:.3f} |" + " |" * (len(rhos) - 1))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "train_seconds": seconds,
                                               "args": vars(args)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
