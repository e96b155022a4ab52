"""Video CPC on the benchmark-size built-in dataset: does the pretraining beat a random
network on every input modality (CPC paper, Table 2)?

    python benchmarks/bench_cpc.py [--modalities diff,rgb,flow_dis] [--seeds 0,1,2]
        [--ablations max_step_1,...] [--fractions] [--finetune] [--out /tmp/vidssl_cpc] [--store docs/results/cpc]
        [--table-only] [--no-doc]

Data: ``builtin-bench:`` (1,200 / 300 / 600 train / val / test videos, 8 motion classes
crossed with 8 scenes; see bench_claims.py). Recipe ``cpc_bench`` (cpc_tiny's settings on
that data) per modality: frame differences, RGB with colour dropping (p = 0.5), stored DIS
flow and stored TV-L1 flow (``vidssl flow extract`` of all three splits into
OUT/flow_<method>; TV-L1 is ~700x slower than DIS, about 2.5 h for this data on 2 cores,
so it is not in the default list). Against each, the random-init stacked-frame network
of the same recipe. Both are measured with the frozen linear probe on the mean of z over
the test-time segments (the recipe's ``eval.view_pooling: mean``), on the test videos'
motion and scene labels, and on the validation videos' motion labels.

``--ablations`` (Table 3, on frame differences; the reference is ``cpc_diff``): predicting
only 1, 2 or 3 steps ahead, the Conv(2+1)D / ConvLSTM / LSTM context models, one
augmentation draw for all segments ("w/o transformation") and no hard negatives; the
prediction accuracy per k of the reference, of "w/o transformation" and of "no hard
negatives" is drawn as the paper's Fig. 3 (docs/results/cpc_steps.png).

``--fractions`` (Fig. 4): the linear probe on 5 %, 18 % and 100 % of the training labels
(stratified, 5 draws), for every stored CPC and random-init run; ``--finetune``: fine-tuning
the frame-difference CPC network on those fractions against training it from scratch.

Each finished run is stored as ``STORE/<run id>.json`` and skipped next time; the table
(CPC - random per seed, with the verdict rule of claims_store) goes to docs/results.md,
section ``cpc``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_claims import Bench  # noqa: E402
from claims_store import STORE, RunStore, cell, paired, verdict  # noqa: E402

MODALITIES = {  # name -> (label, overrides)
    "diff": ("frame differences", ["data.modality=diff"]),
    "rgb": ("RGB, colour dropping 0.5", ["data.modality=rgb", "data.augment.color_drop_p=0.5"]),
    "flow_dis": ("DIS flow, stored", ["data.modality=flow"]),
    "flow_tvl1": ("TV-L1 flow, stored", ["data.modality=flow"]),
}


class CPCBench(Bench):
    def flow_root(self, method: str) -> Path:
        """OUT/flow_<method>, extracted for the three splits (resumable)."""
        from vidssl.data.flow_store import FlowOptions, extract_flow_manifest
        from vidssl.data.manifests import load_manifest

        root = self.out / f"flow_{method}"
        for split, path in self.data().items():
            stats = extract_flow_manifest(load_manifest(path).paths, root, FlowOptions(method=method),
                                          workers=self.threads, progress=sys.stderr.isatty())
            if stats["done"]:
                print(f"[cpc] {method} flow of {split}: {stats['done']} videos, "
                      f"{stats['fields'] / max(stats['seconds'], 1e-9):.0f} fields/s", flush=True)
            if stats["failed"]:
                raise SystemExit(f"flow extraction failed for {stats['failed'][:3]}")
        return root

    def overrides(self, modality: str) -> list[str]:
        ov = list(MODALITIES[modality][1])
        if modality.startswith("flow_"):
            ov.append(f"data.flow_root={self.flow_root(modality.split('_', 1)[1])}")
        return ov

    def fractions(self, run_id: str) -> None:
        """Fig. 4: the linear probe (motion, test) learned from 5 % and 18 % of the training
        labels (5 stratified draws each) and from all of them, added to a stored record."""
        from vidssl.eval.features import make_context
        from vidssl.eval.protocols import evaluate_context, resolve_checkpoint

        rec = self.store.get(run_id)
        if rec is None or "fractions" in rec:
            return
        data = self.data()
        if rec["kind"] == "random":
            ckpt, recipe, ov = "random", rec["recipe"], list(rec["overrides"])
        else:
            ckpt, recipe, ov = str(self.out / "runs" / run_id / "checkpoints" / "last.pt"), None, []
        ctx = make_context(resolve_checkpoint(ckpt), data["train"], data["test"],
                           [*ov, "eval.fewshot_shots=[]", "eval.fewshot_draws=5"], "label", progress=False,
                           recipe=recipe)
        out = evaluate_context("fewshot", ctx)
        rec["fractions"] = {k: out[k] for k in ("frac0.05", "frac0.05_std", "frac0.18", "frac0.18_std", "frac1")}
        self.store.put(run_id, {k: v for k, v in rec.items() if k != "id"})
        print(f"[cpc] {run_id} fractions: {json.dumps(rec['fractions'])}", flush=True)

    def finetune(self, run_id: str, source: str, fraction: float, seed: int) -> dict:
        """Fig. 4's fine-tuning: the cpc_diff network of ``seed`` (``source`` "cpc", decay
        towards it, L2-SP) or the same network from random init (``"scratch"``), trained on
        ``fraction`` of the training labels (stratified), with early stopping on a validation
        split carved from that fraction; top-1 on the test videos' motion labels."""
        from vidssl.eval.features import make_context
        from vidssl.eval.protocols import evaluate_context, resolve_checkpoint

        def make():
            data = self.data()
            ov = [*FINETUNE, f"eval.label_fraction={fraction}", f"train.seed={seed}",
                  f"eval.out_dir={self.out / 'finetune' / run_id}"]
            if source == "cpc":
                ckpt, recipe = str(self.out / "runs" / f"cpc_diff_s{seed}" / "checkpoints" / "last.pt"), None
            else:
                ckpt, recipe = "random", "cpc_bench"
                ov = [*self.overrides("diff"), *ov, "eval.finetune_l2sp=0"]
            ctx = make_context(resolve_checkpoint(ckpt), data["train"], data["test"], ov, "label", progress=False,
                               recipe=recipe)
            out = evaluate_context("finetune", ctx)
            figures = {k: out[k] for k in ("top1", "val_top1", "best_epoch", "epochs_run", "num_finetune_train")}
            return {"kind": "finetune", "source": source, "fraction": fraction, "overrides": ov, "seed": seed,
                    "figures": figures}
        return self.once(run_id, make)

    def random_cpc(self, run_id: str, modality: str, seed: int) -> dict:
        def make():
            ov = [*self.overrides(modality), f"train.seed={seed}"]
            figures = self.probe("random", self.data(), "cpc_bench", ov)
            return {"kind": "random", "recipe": "cpc_bench", "overrides": ov, "seed": seed, "figures": figures}
        return self.once(run_id, make)


# Fig. 4's fine-tuning, sized for 2 cores: the paper's optimiser settings (cpc_ucf101: batch 16,
# lr 0.005, dropout 0.5, L2-SP 0.01, early stopping) for 10 epochs (drop at 7) on one segment
# per training video instead of 8; every stage trains (the paper fine-tunes the whole network)
FINETUNE = ["eval.finetune_epochs=10", "eval.finetune_milestones=[7]", "eval.finetune_batch_size=16",
            "eval.finetune_lr=0.005", "eval.finetune_dropout=0.5", "eval.finetune_l2sp=0.01", "eval.finetune_wd=0",
            "eval.finetune_stop_patience=4", "eval.finetune_freeze_stages=0", "eval.train_views=1"]
FRACTIONS = (0.05, 0.18, 1.0)

ABLATIONS = {  # name -> (Table 3 row, overrides on top of the diff reference)
    "max_step_1": ("1 step", ["method.max_step=1"]),
    "max_step_2": ("2 steps", ["method.max_step=2"]),
    "max_step_3": ("3 steps", ["method.max_step=3"]),
    "conv2plus1d": ("Conv(2+1)D context", ["method.context=conv2plus1d"]),
    "convlstm": ("ConvLSTM context", ["method.context=convlstm"]),
    "lstm": ("LSTM context (pooled)", ["method.context=lstm"]),
    "shared_draw": ("w/o transformation", ["data.shared_draw=true"]),
    "no_hard_negatives": ("w/o hard negatives", ["method.hard_negatives=false"]),
}


def by_seed(records: dict, prefix: str, key: str) -> dict[int, float]:
    out = {}
    for rid, rec in records.items():
        if rid.startswith(prefix + "_s") and rid[len(prefix) + 2:].isdigit():
            out[int(rid[len(prefix) + 2:])] = rec["figures"][key]
    return out


def fraction_by_seed(records: dict, prefix: str, key: str) -> dict[int, float]:
    out = {}
    for rid, rec in records.items():
        if rid.startswith(prefix + "_s") and rid[len(prefix) + 2:].isdigit() and "fractions" in rec:
            out[int(rid[len(prefix) + 2:])] = rec["fractions"][key]
    return out


def table(records: dict) -> str:
    lines = ["| input | linear probe on | CPC | random init | CPC - random per seed | CPC > random |",
             "|---|---|---|---|---|---|"]
    for modality, (label, _) in MODALITIES.items():
        for key, what in (("motion", "motion (test)"), ("appearance", "scene (test)"), ("motion_val", "motion (val)")):
            a, b = by_seed(records, f"cpc_{modality}", key), by_seed(records, f"random_cpc_{modality}", key)
            if not a and not b:
                continue
            diffs = paired(a, b)
            signs = " ".join(f"{d:+.3f}" for d in diffs.values()) or "–"
            lines.append(f"| {label} | {what} | {cell(list(a.values()))} | {cell(list(b.values()))} | {signs} | "
                         f"{verdict(diffs)} |")
    claims = [("frame differences > RGB (CPC)", "cpc_diff", "cpc_rgb"),
              ("DIS flow > RGB (CPC)", "cpc_flow_dis", "cpc_rgb"),
              ("TV-L1 flow > DIS flow (CPC)", "cpc_flow_tvl1", "cpc_flow_dis"),
              ("all steps > 1 step (frame differences)", "cpc_diff", "ablation_max_step_1"),
              ("hard negatives help (frame differences)", "cpc_diff", "ablation_no_hard_negatives"),
              ("random transformations help (frame differences)", "cpc_diff", "ablation_shared_draw"),
              ("masked 3D conv > Conv(2+1)D context", "cpc_diff", "ablation_conv2plus1d"),
              ("masked 3D conv > ConvLSTM context", "cpc_diff", "ablation_convlstm"),
              ("masked 3D conv > LSTM context", "cpc_diff", "ablation_lstm")]
    lines += ["", "The paper's other claims (linear probe, motion, test):", "",
              "| claim (A > B) | A | B | A - B per seed | verdict |", "|---|---|---|---|---|"]
    for claim, pa, pb in claims:
        a, b = by_seed(records, pa, "motion"), by_seed(records, pb, "motion")
        diffs = paired(a, b)
        lines.append(f"| {claim} | {cell(list(a.values()))} | {cell(list(b.values()))} | "
                     f"{' '.join(f'{d:+.3f}' for d in diffs.values()) or '–'} | "
                     f"{verdict(diffs) if a and b else 'not run yet'} |")
    rows = [("cpc_diff", "reference (all steps, masked 3D conv)")] + [(f"ablation_{n}", label)
                                                                        for n, (label, _) in ABLATIONS.items()]
    if any(by_seed(records, rid, "motion") for rid, _ in rows[1:]):
        ref = by_seed(records, "cpc_diff", "motion")
        lines += ["", "Table 3 on frame differences (linear probe, motion, test):", "",
                  "| variant | motion (test) | motion (val) | variant - reference per seed |", "|---|---|---|---|"]
        for rid, label in rows:
            a = by_seed(records, rid, "motion")
            if not a:
                continue
            diffs = " ".join(f"{d:+.3f}" for d in paired(a, ref).values()) if rid != "cpc_diff" else "–"
            lines.append(f"| {label} | {cell(list(a.values()))} | "
                         f"{cell(list(by_seed(records, rid, 'motion_val').values()))} | {diffs} |")
    if any("fractions" in r for r in records.values()):
        lines += ["", "Fraction of the training labels (Fig. 4; linear probe, motion, test; 5 draws per fraction):", "",
                  "| input | labels | CPC | random init | CPC - random per seed | CPC > random |",
                  "|---|---|---|---|---|---|"]
        for modality, (label, _) in MODALITIES.items():
            for frac in ("0.05", "0.18", "1"):
                a, b = (fraction_by_seed(records, f"{p}_{modality}", f"frac{frac}") for p in ("cpc", "random_cpc"))
                if a or b:
                    diffs = paired(a, b)
                    lines.append(f"| {label} | {float(frac):.0%} | {cell(list(a.values()))} | "
                                 f"{cell(list(b.values()))} | {' '.join(f'{d:+.3f}' for d in diffs.values()) or '–'}"
                                 f" | {verdict(diffs)} |")
    ft = {rid: r for rid, r in records.items() if r.get("kind") == "finetune"}
    if ft:
        lines += ["", "Fine-tuning on a fraction of the training labels (Fig. 4; frame differences, motion, test):",
                  "", "| labels | CPC, fine-tuned | from scratch | CPC - scratch per seed | CPC > scratch |",
                  "|---|---|---|---|---|"]
        for frac in FRACTIONS:
            a, b = ({r["seed"]: r["figures"]["top1"] for r in ft.values()
                     if r["source"] == src and r["fraction"] == frac} for src in ("cpc", "scratch"))
            diffs = paired(a, b)
            lines.append(f"| {frac:.0%} | {cell(list(a.values()))} | {cell(list(b.values()))} | "
                         f"{' '.join(f'{d:+.3f}' for d in diffs.values()) or '–'} | {verdict(diffs)} |")
    minutes = [r["train_minutes"] for rid, r in records.items() if rid.startswith("cpc_") and "train_minutes" in r]
    lines.append(f"\nChance: 0.125 on both label sets. Pretraining: {cell(minutes, 1)} minutes per run on 2 cores.")
    return "\n".join(lines)


def steps_picture(out: Path, png: Path) -> None:
    """Fig. 3 from the seed-0 runs that exist: accuracy per k with and without the hard parts."""
    from vidssl.viz.cpc_steps import plot_step_accuracy, step_accuracy

    runs = {"hard negatives + transformations": "cpc_diff_s0", "w/o transformation": "ablation_shared_draw_s0",
            "w/o hard negatives": "ablation_no_hard_negatives_s0"}
    curves = {name: step_accuracy(out / "runs" / rid) for name, rid in runs.items()
              if (out / "runs" / rid / "metrics.jsonl").is_file()}
    if curves:
        print(plot_step_accuracy(curves, png, "video CPC on frame differences (builtin-bench, seed 0)"))
        for name, acc in curves.items():
            print(f"  {name}: " + " ".join(f"k{k} {v:.3f}" for k, v in acc.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modalities", default="diff,rgb,flow_dis", help=f"comma-separated: {', '.join(MODALITIES)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--ablations", default="", help=f"comma-separated Table 3 rows: {', '.join(ABLATIONS)}")
    ap.add_argument("--out", default="/tmp/vidssl_cpc", help="run folders, stored flow, features")
    ap.add_argument("--store", default=str(STORE.parent / "cpc"), help="folder of the per-run JSON figures")
    ap.add_argument("--finetune", action="store_true",
                    help="Fig. 4's fine-tuning on 5/18/100 %% of the labels: CPC (frame differences) vs scratch")
    ap.add_argument("--fractions", action="store_true",
                    help="add Fig. 4's fraction-of-labels probes to every stored CPC and random-init run")
    ap.add_argument("--table-only", action="store_true", help="run nothing: rebuild the table from the store")
    ap.add_argument("--threads", type=int, default=2)
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = RunStore(args.store)
    start = time.time()
    if not args.table_only:
        bench = CPCBench(Path(args.out), store, args.threads)
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            for modality in [m for m in args.modalities.split(",") if m]:
                if modality not in MODALITIES:
                    raise SystemExit(f"unknown modality {modality!r} (allowed: {', '.join(MODALITIES)})")
                bench.random_cpc(f"random_cpc_{modality}_s{seed}", modality, seed)
                bench.pretrain(f"cpc_{modality}_s{seed}", "cpc_bench", bench.overrides(modality), seed)
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            for name in [a for a in args.ablations.split(",") if a]:
                if name not in ABLATIONS:
                    raise SystemExit(f"unknown ablation {name!r} (allowed: {', '.join(ABLATIONS)})")
                bench.pretrain(f"ablation_{name}_s{seed}", "cpc_bench",
                               [*bench.overrides("diff"), *ABLATIONS[name][1]], seed)
        if args.finetune:
            for seed in [int(s) for s in args.seeds.split(",") if s]:
                for frac in FRACTIONS:
                    for src in ("cpc", "scratch"):
                        bench.finetune(f"finetune_{src}_diff_f{frac:g}_s{seed}", src, frac, seed)
        if args.fractions:
            for rid in sorted(store.all()):
                if rid.startswith(("cpc_", "random_cpc_")):
                    bench.fractions(rid)
        steps_picture(Path(args.out), Path(args.store).parent / "cpc_steps.png")
    text = table(store.all())
    print("\n" + text)
    if args.doc:
        write_section("cpc", text + "\n\n" + provenance((time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
