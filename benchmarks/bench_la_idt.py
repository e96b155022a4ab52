"""The dense-trajectory paper's Table 1, in shape, on the built-in dataset (tiny settings).

Rows: random init, Video IR, Video LA, Video LA + IDT prior (the full method: fixed IDT
clusters, then joint tuning), supervised. Columns: linear-probe top-1 (frozen pooled
features, multi-view test; `vidssl eval linear`) on the motion labels (``label``) and on
the appearance labels (``appearance``), and the NMI of a k-means (K = the LA runs' K,
mean of 3 clusterings) of each encoder's frozen training-video embeddings against
each. Mean +- standard deviation over ``--seeds`` training seeds. A second table gives
the clusters the workflow's stages trained on (``clusters.json`` of each seed).

The built-in data cross 8 motion classes with 5 scenes, and the scene covers most of
the pixels: the paper's claim is that plain LA clusters by appearance and the IDT prior
moves the clusters (and the probe) towards motion.

Video LA and Video LA + IDT prior come from one `vidssl workflow la-idt` run per seed
(recipe ``la_idt_tiny``: IR 10 epochs, then LA 20 epochs, or LA(IDT) 15 + joint 5); Video
IR is trained for the same total number of epochs; supervised is ``supervised_tiny``.
The IDT descriptors are extracted once and shared by the seeds.

    python benchmarks/bench_la_idt.py                      # 3 seeds, the built-in dataset
    python benchmarks/bench_la_idt.py --seeds 5 --out runs/bench_la_idt --json table1.json
    python benchmarks/bench_la_idt.py --quick              # 32 tiny videos, 1 epoch per stage
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

ROWS = ["random init", "Video IR", "Video LA", "Video LA + IDT prior", "supervised"]
COLUMNS = [("motion linear", "probe", "label"), ("appearance linear", "probe", "appearance"),
           ("NMI motion", "nmi", "label"), ("NMI appearance", "nmi", "appearance")]
# --quick: the tiny synthetic set and tiny model of tests/test_la_idt.py
QUICK_TRAIN = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
               "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "train.epochs=1"]
QUICK_IDT = ["idt.flow=dis", "idt.camera=false", "idt.track_length=8", "idt.patch_size=16", "idt.min_var=0.3",
             "idt.min_distance=3", "idt.max_tracks=200", "workers=1", "fisher.components=2", "fisher.sketch_dim=64",
             "analysis.montage=false"]
QUICK_EVAL = ["eval.linear_epochs=5", "eval.batch_size=8", "data.test_clips=2"]


def share_descriptors(first: Path, out: Path) -> None:
    """Hard-link (or copy) seed 0's IDT descriptor files: the extract stage then skips them."""
    src, dst = first / "idt" / "descriptors", out / "idt" / "descriptors"
    if not src.is_dir():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.npz"):
        if not (dst / f.name).exists():
            try:
                os.link(f, dst / f.name)
            except OSError:
                shutil.copy2(f, dst / f.name)


def frozen_nmi(checkpoint: str, train: str, test: str, overrides: list[str], recipe: str | None, k: int,
               seed: int) -> dict:
    """{column: mean NMI} of m = 3 k-means (K = k) of the frozen training-video embeddings."""
    from vidssl.eval.clusters import cluster_report, label_columns
    from vidssl.eval.features import make_context, video_embeddings
    from vidssl.methods.clustering import cluster_features

    ctx = make_context(checkpoint, train, test, overrides, None, False, recipe)
    feats, _ = ctx.features("train")
    labelings = cluster_features(video_embeddings(feats), k, 3, seed=seed)
    return {col: r["mean"]["nmi"] for col, r in cluster_report(labelings, label_columns(ctx.train)).items()}


def measure(checkpoint: str, train: str, test: str, overrides: list[str], recipe: str | None, k: int,
            seed: int) -> dict:
    """One row of one seed: {column title: value}."""
    from vidssl.eval.protocols import evaluate

    row = {}
    for title, kind, column in COLUMNS:
        if kind == "probe":
            row[title] = evaluate("linear", checkpoint, train, test, overrides, label_column=column, progress=False,
                                  recipe=recipe)["top1"]
    nmi = frozen_nmi(checkpoint, train, test, overrides, recipe, k, seed)
    row.update({title: nmi.get(column, float("nan")) for title, kind, column in COLUMNS if kind == "nmi"})
    return row


def run_seed(seed: int, args, train: str, test: str, base: list[str], ev: list[str], first: Path | None) -> tuple:
    """(rows {row: {column: value}}, the workflow's clusters.json) of one seed."""
    from vidssl.config import load_config
    from vidssl.engine.trainer import train as train_run
    from vidssl.workflow.la_idt import Layout, la_clusters, run_la_idt, stage_config
    from vidssl.workflow.recipe import load_workflow, stage_overrides

    out = Path(args.out) / f"seed{seed}"
    overrides = [*base, f"train.seed={seed}"]
    if first is not None:
        share_descriptors(first, out)
    result = run_la_idt(train, out, args.recipe, overrides, progress=False)
    rec, cli, path = load_workflow(args.recipe, overrides)
    layout = Layout(out.resolve())
    ir_cfg = stage_config(rec, cli, path.parent, "ir", layout, train, False)
    la_cfg = stage_config(rec, cli, path.parent, "la", layout, train, False)
    k, _ = la_clusters(stage_config(rec, cli, path.parent, "la_idt", layout, train, False),
                       result["clusters"]["num_videos"])
    # Video IR for as many epochs as plain LA's warm-up + LA (Table 1 compares finished runs)
    ir_cfg.train.epochs = ir_cfg.train.epochs + la_cfg.train.epochs
    ir_run = train_run(ir_cfg, out / "runs" / "ir_full")
    sup_extra = [f"train.epochs={args.sup_epochs}"] if args.sup_epochs else []
    # the same model and data settings as every workflow stage (the "all" overrides), labels used
    sup_cfg = load_config("supervised_tiny", [*rec.overrides.all, *cli["all"], *sup_extra, "train.progress=false"])
    sup_cfg.data.train = train
    sup_run = train_run(sup_cfg, out / "runs" / "supervised")
    ckpts = {"random init": "random", "Video IR": ir_run / "checkpoints/last.pt",
             "Video LA": layout.checkpoint("la"), "Video LA + IDT prior": result["final"],
             "supervised": sup_run / "checkpoints/last.pt"}
    rows = {}
    for name, ckpt in ckpts.items():
        recipe = rec.stages.ir if ckpt == "random" else None
        extra = [*stage_overrides(rec, cli, "ir"), *ev] if ckpt == "random" else ev
        rows[name] = measure(str(ckpt), train, test, extra, recipe, k, seed)
        print(f"[bench] seed {seed} {name}: " + ", ".join(f"{c} {v:.3f}" for c, v in rows[name].items()), flush=True)
    return rows, result["clusters"]


def mean_std(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds (mean and spread)")
    ap.add_argument("--out", default="runs/bench_la_idt", help="runs, IDT descriptors and the feature cache")
    ap.add_argument("--recipe", default="la_idt_tiny", help="workflow recipe (default la_idt_tiny)")
    ap.add_argument("--sup-epochs", type=int, default=None, help="supervised epochs (default: supervised_tiny's)")
    ap.add_argument("--linear-epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="32 tiny videos (32 px, 16 frames), 1 epoch per stage")
    ap.add_argument("--json", default=None, help="write every seed's numbers as JSON")
    ap.add_argument("overrides", nargs="*", help="workflow overrides (e.g. la_idt.train.epochs=6)")
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/bench_la_idt.py`
        from results_doc import add_doc_argument, provenance, section_name, write_section
    except ModuleNotFoundError:  # python -m benchmarks.bench_la_idt
        from benchmarks.results_doc import add_doc_argument, provenance, section_name, write_section
    add_doc_argument(ap)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    os.environ.setdefault("VIDSSL_CACHE", str(out.resolve() / "cache"))
    base, ev = list(args.overrides), [f"eval.linear_epochs={args.linear_epochs}"]
    train, test = "builtin:train", "builtin:test"
    if args.quick:
        from vidssl.data.synthetic import make_synthetic

        # 32 videos: the test split then holds every motion class
        files = make_synthetic(out / "data", videos=32, size=32, frames=16, seed=0)
        train, test = str(files["train"]), str(files["test"])
        base = [*QUICK_TRAIN, *QUICK_IDT, *base]
        ev = [*QUICK_TRAIN, *QUICK_EVAL, *ev]
        args.sup_epochs = args.sup_epochs or 1
    t0 = time.time()
    per_seed, clusters = [], []
    for seed in range(args.seeds):
        rows, cl = run_seed(seed, args, train, test, base, ev, out / "seed0" if seed else None)
        per_seed.append(rows)
        clusters.append(cl)

    print(f"\nTable 1 shape: {train} (train) / {test} (test), recipe {args.recipe}, "
          f"{args.seeds} seeds, mean +- std ({(time.time() - t0) / 60:.1f} min)")
    width = max(len(r) for r in ROWS)
    print(f"{'encoder':<{width}}  " + "  ".join(f"{t:>17}" for t, _, _ in COLUMNS))
    for name in ROWS:
        print(f"{name:<{width}}  " + "  ".join(f"{mean_std([s[name][t] for s in per_seed]):>17}"
                                                for t, _, _ in COLUMNS))
    print("\nclusters the workflow's stages trained on / found (NMI, mean +- std over seeds)")
    print(f"{'clusters':<10}  {'NMI motion':>17}  {'NMI appearance':>17}  what")
    for entry, e in clusters[0]["entries"].items():
        cells = [mean_std([c["entries"][entry]["metrics"][col]["nmi"] for c in clusters])
                 for col in ("label", "appearance")]
        print(f"{entry:<10}  {cells[0]:>17}  {cells[1]:>17}  {e['clusters']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": per_seed, "clusters": clusters, "train": train, "test": test,
                                               "recipe": args.recipe}, indent=2) + "\n")
    if args.doc:  # --no-doc: print only. The same two tables in Markdown
        md = [f"Table 1 shape: {train} (train) / {test} (test), recipe {args.recipe}, {args.seeds} seeds, mean +- std",
              "", "| encoder | " + " | ".join(t for t, _, _ in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        md += [f"| {name} | " + " | ".join(mean_std([s[name][t] for s in per_seed]) for t, _, _ in COLUMNS) + " |"
               for name in ROWS]
        md += ["", "clusters the workflow's stages trained on / found (NMI, mean +- std over seeds)", "",
               "| clusters | NMI motion | NMI appearance | what |", "|---|---|---|---|"]
        for entry, e in clusters[0]["entries"].items():
            cells = [mean_std([c["entries"][entry]["metrics"][col]["nmi"] for c in clusters])
                     for col in ("label", "appearance")]
            md.append(f"| {entry} | {cells[0]} | {cells[1]} | {str(e['clusters']).replace('|', '/')} |")
        md += ["", provenance((time.time() - t0) / 60)]
        name = section_name("la_idt", args, ap,
                            ["seeds", "recipe", "sup_epochs", "linear_epochs", "quick", "overrides"])
        path = write_section(name, "\n".join(md), args.doc_path)
        print(f"\n[bench] wrote section {name} of {path}")


if __name__ == "__main__":
    main()
