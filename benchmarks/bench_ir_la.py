"""Video IR vs Video LA on the built-in dataset (tiny CPU recipes), side by side.

Trains ``ir_tiny`` and ``la_tiny`` (3D ResNet-18 at width 16, 8 x 56 x 56 clips),
then, for the random-init backbone, IR and LA:

- the linear probe (``vidssl eval linear``: frozen pooled features, multi-view test)
  on the motion labels (``label``) and on the appearance labels (``appearance``);
- the clusters: LA's own clusterings (stored in its checkpoint) and a k-means of the
  IR bank with the same K, against the motion and the appearance labels
  (NMI, adjusted Rand, purity).

The dense-trajectory paper's observation (Sec. 1, Fig. 1) is that plain LA clusters
videos by appearance; the built-in data cross 8 motion classes with 5 scenes so the
two readings can be told apart.

    python benchmarks/bench_ir_la.py                       # the recipes as they are
    python benchmarks/bench_ir_la.py --epochs 6 --json out.json
    python benchmarks/bench_ir_la.py --modality diff     # frame differences: no static background
    python benchmarks/bench_ir_la.py --out runs/bench_ir_la --reuse   # keep / reuse runs
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def train_recipe(recipe: str, run_dir: Path, overrides: list[str], reuse: bool) -> tuple[Path, float]:
    from vidssl.config import load_config
    from vidssl.engine.trainer import train

    ckpt = run_dir / "checkpoints" / "last.pt"
    if reuse and ckpt.is_file() and torch.load(ckpt, weights_only=True).get("finished"):
        return ckpt, float("nan")
    cfg = load_config(recipe, ["train.progress=false", *overrides])
    t = time.perf_counter()
    train(cfg, run_dir, resume=reuse)
    return ckpt, time.perf_counter() - t


def probe(checkpoint: str, recipe: str, column: str | None, overrides: list[str]) -> dict:
    from vidssl.eval.protocols import evaluate

    return evaluate("linear", checkpoint, "builtin:train", "builtin:test", overrides, label_column=column,
                    progress=False, recipe=recipe if checkpoint == "random" else None)


def cluster_nmi(ckpt_path: Path, num_clusters: int | None, seed: int) -> dict:
    """LA: its stored clusterings; IR: k-means of its bank with K (the LA run's)."""
    from vidssl.data.builtin import open_manifest
    from vidssl.eval.clusters import cluster_report, label_columns
    from vidssl.methods.clustering import cluster_features

    ckpt = torch.load(ckpt_path, weights_only=True)
    manifest = open_manifest("builtin:train", check_files=False)
    if "cluster_labels" in ckpt["model"] and int(ckpt["model"]["clustered_epoch"]) >= 0:
        labelings = [row.numpy() for row in ckpt["model"]["cluster_labels"]]
    else:
        labelings = cluster_features(ckpt["model"]["memory_bank.bank"].float().numpy(), num_clusters, 3, seed=seed)
    report = cluster_report(labelings, label_columns(manifest))
    return {col: r["mean"] for col, r in report.items()} | {"K": int(len(np.unique(labelings[0])))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs of both recipes")
    ap.add_argument("--warmup", type=int, default=None, help="override la_tiny's method.ir_warmup_epochs")
    ap.add_argument("--modality", default="rgb", choices=["rgb", "diff", "flow"],
                    help="input modality for training, the random baseline and the probes (data.modality)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="data.workers (decoding processes)")
    ap.add_argument("--out", default=None, help="folder of the two runs (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="reuse finished runs in --out")
    ap.add_argument("--linear-epochs", type=int, default=100)
    ap.add_argument("--json", default=None)
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/bench_ir_la.py`
        from results_doc import add_doc_argument, provenance, section_name, write_section
    except ModuleNotFoundError:  # python -m benchmarks.bench_ir_la
        from benchmarks.results_doc import add_doc_argument, provenance, section_name, write_section
    add_doc_argument(ap)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_ir_la_"))
    os.environ.setdefault("VIDSSL_CACHE", str(out / "cache"))
    common = [f"data.workers={args.workers}", "train.seed=0", f"data.modality={args.modality}"]
    if args.epochs:
        common.append(f"train.epochs={args.epochs}")
    la_extra = [f"method.ir_warmup_epochs={args.warmup}"] if args.warmup is not None else []
    ev = [f"eval.linear_epochs={args.linear_epochs}", f"data.workers={args.workers}",
          f"data.modality={args.modality}"]

    results, seconds = {}, {}
    ir_ckpt, seconds["ir"] = train_recipe("ir_tiny", out / "ir", common, args.reuse)
    la_ckpt, seconds["la"] = train_recipe("la_tiny", out / "la", common + la_extra, args.reuse)
    for name, ckpt in [("random", "random"), ("ir", str(ir_ckpt)), ("la", str(la_ckpt))]:
        results[name] = {
            "motion": probe(ckpt, "ir_tiny", None, ev)["top1"],
            "appearance": probe(ckpt, "ir_tiny", "appearance", ev)["top1"],
        }
    la_clusters = cluster_nmi(la_ckpt, None, seed=0)
    ir_clusters = cluster_nmi(ir_ckpt, la_clusters["K"], seed=0)

    print(f"built-in dataset, tiny 3D ResNet-18, {args.modality} input; runs in {out}")
    print(f"training time: IR {seconds['ir']:.0f} s, LA {seconds['la']:.0f} s (CPU, {args.threads} threads)")
    print(f"{'linear probe top-1':<22} {'motion (8)':>10} {'appearance (5)':>15}")
    for name, r in results.items():
        print(f"{name:<22} {r['motion']:>10.3f} {r['appearance']:>15.3f}")
    for name, r in results.items():
        if name != "random":
            print(f"{name} / random on motion: {r['motion'] / max(results['random']['motion'], 1e-9):.2f}x")
    print(f"clusters (K = {la_clusters['K']}, mean of 3)   NMI motion  NMI appearance  purity motion  purity appearance")
    for name, c in [("LA stored clusters", la_clusters), ("k-means of IR bank", ir_clusters)]:
        print(f"{name:<30} {c['label']['nmi']:>10.3f} {c['appearance']['nmi']:>15.3f} "
              f"{c['label']['purity']:>14.3f} {c['appearance']['purity']:>18.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"modality": args.modality, "probe": results, "train_seconds": seconds,
                                               "la_clusters": la_clusters, "ir_bank_clusters": ir_clusters},
                                              indent=2) + "\n")
    # one row a run, as docs/results.md quotes it: the motion probe and LA's clusters
    table = ("| input | random | IR | LA | LA clusters NMI motion / appearance |\n|---|---|---|---|---|\n"
             f"| {args.modality} | " + " | ".join(f"{results[k]['motion']:.3f}" for k in ("random", "ir", "la"))
             + f" | {la_clusters['label']['nmi']:.3f} / {la_clusters['appearance']['nmi']:.3f} |")
    print(f"\n{table}")
    if args.doc:  # --no-doc: print only
        name = section_name(f"ir_la/modality={args.modality}", args, ap, ["epochs", "warmup", "linear_epochs"])
        path = write_section(name, table + "\n\n" + provenance(), args.doc_path)
        print(f"[ir_la] wrote section {name} of {path}")


if __name__ == "__main__":
    main()
