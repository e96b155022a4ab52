"""Action detection (AVA-style, large-scale study Table 10 / App. B.3) on the built-in detection
data: a self-supervised tiny model against random init, frozen encoder, frame mAP at IoU 0.5.

    python benchmarks/bench_detect.py [--seeds 0,1,2] [--recipe simclr_tiny] [--out /tmp/vidssl_detect]
        [--store docs/results/detect] [--table-only] [--no-doc]

Data: ``builtin-detect:`` (:mod:`vidssl.data.synthetic`, preset ``detection``: 240 / 60 / 100
train / val / test videos of 2-3 moving objects, each with its own motion class and a box per
keyframe at 1 Hz; rendered on first use). Per seed:

- ``random_s<seed>``: ``vidssl eval detect --checkpoint random --config RECIPE`` (the recipe's
  model and input: tiny 3D R-18, width 16, frame differences, 8 x 2 clips), ``train.seed`` = seed
  (the random weights and the head);
- ``<recipe>_s<seed>``: RECIPE pretrained on ``builtin-detect:train`` (labels unused) at that
  seed, then the same evaluation of its last checkpoint.

The evaluation: the detection head of App. B.3 (conv5 at stride 16, RoIAlign, temporal mean,
spatial max, dropout, per-class sigmoid) on the frozen encoder, trained on the training
keyframes with the protocol's defaults (32 epochs, lr 0.3, steps at 16 / 24 / 28, 5 warm-up
epochs), on the ground-truth boxes as proposals; the figures are the test split's frame mAP
and per-class AP, and the validation split's mAP (settings are chosen there, never on test).

Each finished run is stored as ``STORE/<run id>.json`` (:mod:`claims_store`) and skipped next
time; a pretraining resumes from OUT. The table is built from the store (``--table-only`` runs
nothing) and written to docs/results.md (section ``detect``), with the paired verdict of
"pretrained > random init" over the seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vidssl.config import load_config
from vidssl.data.builtin import open_manifest, resolve_builtin
from vidssl.engine.trainer import train
from vidssl.eval import detect
from vidssl.eval.protocols import resolve_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims_store import RunStore, by_seed, cell, paired, verdict  # noqa: E402

STORE = Path(__file__).resolve().parent.parent / "docs" / "results" / "detect"
SPLITS = ("train", "val", "test")


class Bench:
    """Runs, measures and stores; ``out`` holds the pretraining runs, ``store`` the figures."""

    def __init__(self, out: Path, store: RunStore, recipe: str, overrides: list[str]):
        self.out, self.store, self.recipe, self.overrides = out, store, recipe, list(overrides)
        self.data = {s: f"builtin-detect:{s}" for s in SPLITS}

    def detect(self, checkpoint: str, seed: int) -> dict:
        """Test and validation mAP of the frozen encoder ``checkpoint`` (or ``random``): one head,
        trained once, scored on both splits."""
        ov = [f"train.seed={seed}", *self.overrides]
        recipe = self.recipe if checkpoint == "random" else None
        ctx = detect.make_context(resolve_checkpoint(checkpoint), self.data["train"], self.data["test"], ov,
                                  progress=False, recipe=recipe)
        train_table = detect.box_table(ctx, ctx.train, "", "train")
        det = detect.fit(ctx, train_table)
        test = detect.score(ctx, det, ctx.test, detect.box_table(ctx, ctx.test, "", "test", det.classes))
        val_manifest = open_manifest(self.data["val"])
        val = detect.score(ctx, det, val_manifest, detect.box_table(ctx, val_manifest, "", "val", det.classes))
        return {"mAP": test["mAP"], "mAP_val": val["mAP"], "AP": test["AP"], "train_boxes": test["train_boxes"],
                "test_boxes": test["test_boxes"], "final_loss": det.losses[-1]}

    def once(self, run_id: str, make) -> dict:
        """The stored record of ``run_id``, or ``make()`` timed and stored."""
        return self.store.once(run_id, make, "detect")

    def random(self, seed: int) -> dict:
        return self.once(f"random_s{seed}", lambda: {"kind": "random", "recipe": self.recipe, "seed": seed,
                                                      "overrides": self.overrides,
                                                      "figures": self.detect("random", seed)})

    def pretrained(self, seed: int) -> dict:
        run_id = f"{self.recipe}_s{seed}"

        def make():
            ov = [f"train.seed={seed}", "train.progress=false", f"data.train={resolve_builtin(self.data['train'])}"]
            cfg = load_config(self.recipe, ov)
            run_dir = Path(train(cfg, run_dir=self.out / "runs" / run_id, resume=True))
            summary = json.loads((run_dir / "summary.json").read_text())
            return {"kind": "pretrain", "recipe": self.recipe, "seed": seed, "overrides": ov + self.overrides,
                    "train_minutes": round(summary["seconds"] / 60, 2),
                    "figures": self.detect(str(run_dir / "checkpoints" / "last.pt"), seed)}
        return self.once(run_id, make)


def table(records: dict[str, dict], recipe: str) -> str:
    rows = [("random init", "random"), (f"{recipe} (pretrained on builtin-detect:train)", recipe)]
    classes = sorted({c for r in records.values() for c in r["figures"].get("AP", {})})
    lines = ["| encoder (frozen) | test mAP | val mAP | " + " | ".join(classes) + " | minutes each |",
             "|---|---|---|" + "---|" * len(classes) + "---|"]
    for name, prefix in rows:
        test = by_seed(records, prefix, lambda r: r["figures"]["mAP"])
        val = by_seed(records, prefix, lambda r: r["figures"]["mAP_val"])
        per_class = [by_seed(records, prefix, lambda r, c=c: r["figures"]["AP"][c]) for c in classes]
        minutes = by_seed(records, prefix, lambda r: r["minutes"])
        lines.append(f"| {name} | {cell(list(test.values()))} | {cell(list(val.values()))} | "
                     + " | ".join(cell(list(p.values()), 2) for p in per_class)
                     + f" | {cell(list(minutes.values()), 1)} |")
    a = by_seed(records, recipe, lambda r: r["figures"]["mAP"])
    b = by_seed(records, "random", lambda r: r["figures"]["mAP"])
    diffs = paired(a, b)
    signs = " ".join(f"{d:+.3f}" for d in diffs.values()) or "–"
    lines.append(f"\nPretrained > random init (test mAP), A - B per seed: {signs}; verdict: {verdict(diffs)}.")
    boxes = next((r["figures"] for r in records.values() if "test_boxes" in r["figures"]), None)
    if boxes:
        lines.append(f"Boxes: {boxes['train_boxes']} training, {boxes['test_boxes']} test (8 classes); chance AP of a "
                     "class is about its share of the test boxes (~0.12). Cells: mean ± std (seeds).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--recipe", default="simclr_tiny", help="the tiny pretraining recipe (also random init's model)")
    ap.add_argument("--out", default="/tmp/vidssl_detect", help="pretraining runs")
    ap.add_argument("--store", default=None, help="folder of the per-run JSON figures (default: docs/results/detect)")
    ap.add_argument("--table-only", action="store_true", help="run nothing: rebuild the table from the store")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="evaluation overrides (e.g. data.workers=2)")
    from results_doc import add_doc_argument, provenance, section_name, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = RunStore(args.store or STORE)
    start = time.time()
    if not args.table_only:
        bench = Bench(Path(args.out), store, args.recipe, args.overrides)
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            bench.random(seed)
            bench.pretrained(seed)
    text = table(store.all(), args.recipe)
    print("\n" + text)
    if args.doc:
        write_section(section_name("detect", args, ap, ["recipe"]), text + "\n\n" + provenance((time.time() - start) / 60),
                      args.doc_path)


if __name__ == "__main__":
    main()
