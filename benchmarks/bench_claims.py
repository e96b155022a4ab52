"""The papers' central claims measured on the benchmark-size built-in dataset, with verdicts.

    python benchmarks/bench_claims.py [--claims calibration,la_idt_diff,...] [--seeds 0,1,2]
        [--out /tmp/vidssl_claims] [--store docs/results/claims] [--table-only] [--no-doc]

The claims and the papers' own figures are in ../shared/papers/CLAIMS.md; the data is
``builtin-bench:`` (:mod:`vidssl.data.synthetic`, preset ``benchmark``: 1,200 / 300 / 600
train / val / test videos, 8 motion classes crossed with 8 photograph scenes). Every
encoder is measured the same way: the frozen linear probe (``vidssl eval linear``) on the
test videos' motion labels and on their scene labels (``appearance`` column), trained on the
training videos; the validation split's motion figure is stored too (settings are chosen
on it, never on the test split).

Claim groups (``--claims``; each runs alone in at most about an hour on 2 cores):

- ``calibration``: supervised 3D R-18 on RGB and on frame differences, the single-frame
  2D R-18, random init (RGB, differences), IDT Fisher vectors: what the dataset allows;
- ``la_idt_rgb`` / ``la_idt_diff``: the la-idt workflow (``la_idt_bench``: IR -> LA, and
  IR -> LA(IDT) -> joint tuning) per seed: LA + IDT > LA > IR on motion (Table 1), every
  method > random init, and the cluster claim of Fig. 2-3 (plain LA's clusters follow the
  scene, the IDT clusters follow motion: NMI against both labels);
- ``rho_simclr`` / ``rho_byol``: rho = 2 > rho = 1 on RGB (large-scale study, Table 2);
  ``rho_simclr_camera`` / ``rho_byol_camera``: the same on the benchmark data with a panning
  camera (``camera`` 0.75, rendered into OUT/data_camera).

Each finished run is stored as ``STORE/<run id>.json`` (:mod:`claims_store`) and skipped
next time; training runs resume from OUT. The tables are built from whatever the store
holds (``--table-only`` runs nothing) and written to docs/results.md (sections
``claims`` and ``claims_calibration``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vidssl.config import load_config
from vidssl.data.builtin import resolve_builtin
from vidssl.data.synthetic import PRESETS, make_synthetic
from vidssl.engine.trainer import train
from vidssl.eval.features import make_context
from vidssl.eval.protocols import evaluate_context, resolve_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims_store import RunStore, by_seed, cell, paired, verdict  # noqa: E402
from idt_probe import IDT_OPTIONS, fisher_vector_figures  # noqa: E402

CAMERA = 0.75  # px/frame at 64 px: the panning-camera variant of the rho claims
GROUPS = ("calibration", "la_idt_rgb", "la_idt_diff", "rho_simclr", "rho_byol", "rho_simclr_camera",
          "rho_byol_camera")
# App. B.2's probe on augmented clips, sized for 2 cores: 10 epochs (2 of warm-up) instead of
# 60 (8); lr 4.0 for batch 512 scaled linearly to batch 64: 0.5
CLIP_PROBE = ["eval.linear_clips_epochs=10", "eval.linear_clips_warmup_epochs=2", "eval.linear_clips_lr=0.5",
              "eval.linear_clips_batch_size=64"]


class Bench:
    """Runs, measures and stores; ``out`` holds the run folders, ``store`` the figures."""

    def __init__(self, out: Path, store: RunStore, threads: int, workflow_redo: str | None = None):
        self.out, self.store, self.threads, self.workflow_redo = out, store, threads, workflow_redo
        self._data: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ data

    def data(self, variant: str = "still") -> dict[str, str]:
        """Manifest paths of the benchmark data: ``still`` (builtin-bench:) or ``camera``."""
        if variant not in self._data:
            if variant == "still":
                paths = {s: resolve_builtin(f"builtin-bench:{s}") for s in ("train", "val", "test")}
            else:
                made = make_synthetic(self.out / "data_camera", camera=CAMERA, workers=self.threads,
                                      **PRESETS["benchmark"])
                paths = {s: str(made[s]) for s in ("train", "val", "test")}
            self._data[variant] = paths
        return self._data[variant]

    # ------------------------------------------------------------------ measuring

    def probe(self, checkpoint: str, data: dict[str, str], recipe: str | None = None,
              overrides: list[str] = (), clips: bool = False) -> dict[str, float]:
        """Linear-probe top-1: motion (test, val) and appearance (test); with ``clips``, also
        App. B.2's probe on augmented clips (motion, test: ``motion_clips``)."""
        out = {}
        if clips:
            ctx = make_context(resolve_checkpoint(checkpoint), data["train"], data["test"],
                               [*overrides, *CLIP_PROBE, f"eval.out_dir={self.out / 'probes'}"], "label",
                               progress=False, recipe=recipe)
            out["motion_clips"] = evaluate_context("linear_clips", ctx)["top1"]
        for name, split, column in (("motion", "test", "label"), ("appearance", "test", "appearance"),
                                    ("motion_val", "val", "label")):
            ctx = make_context(resolve_checkpoint(checkpoint), data["train"], data[split], list(overrides), column,
                               progress=False, recipe=recipe)
            out[name] = evaluate_context("linear", ctx)["top1"]
        return out

    def once(self, run_id: str, make) -> dict:
        """The stored record of ``run_id``, or ``make()`` timed and stored."""
        return self.store.once(run_id, make)

    def pretrain(self, run_id: str, recipe: str, overrides: list[str], seed: int, variant: str = "still",
                 clips: bool = False) -> dict:
        def make():
            data = self.data(variant)
            ov = [f"train.seed={seed}", "train.progress=false", f"data.train={data['train']}", *overrides]
            if "supervised" in recipe:
                ov.append(f"data.val={data['val']}")
            cfg = load_config(recipe, ov)
            run_dir = Path(train(cfg, run_dir=self.out / "runs" / run_id, resume=True))
            summary = json.loads((run_dir / "summary.json").read_text())
            figures = self.probe(str(run_dir / "checkpoints" / "last.pt"), data, clips=clips)
            return {"kind": "pretrain", "recipe": recipe, "overrides": ov, "seed": seed, "figures": figures,
                    "train_minutes": round(summary["seconds"] / 60, 2)}
        return self.once(run_id, make)

    def random(self, run_id: str, modality: str, seed: int, variant: str = "still", clips: bool = False) -> dict:
        def make():
            ov = [f"data.modality={modality}", f"train.seed={seed}"]
            figures = self.probe("random", self.data(variant), "supervised_bench", ov, clips=clips)
            return {"kind": "random", "recipe": "supervised_bench", "overrides": ov, "seed": seed, "figures": figures}
        return self.once(run_id, make)

    def idt_fv(self, run_id: str = "idt_fv") -> dict:
        """IDT Fisher vectors of train / val / test (la_idt_tiny's settings): a linear classifier
        on them (motion, scene) and k-means NMI against both labels."""
        def make():
            return {"kind": "idt", "options": IDT_OPTIONS,
                    "figures": fisher_vector_figures(self.data(), self.out / "idt", IDT_OPTIONS, self.threads)}
        return self.once(run_id, make)

    def workflow(self, run_id: str, modality: str, seed: int) -> dict:
        """The la-idt workflow (la_idt_bench) at one seed; the IDT descriptors are shared."""
        def make():
            from vidssl.workflow.la_idt import run_la_idt

            data = self.data()
            out = self.out / "runs" / run_id
            shared = self.out / "idt" / "descriptors"  # the calibration row extracts into the same folder
            shared.mkdir(parents=True, exist_ok=True)
            (out / "idt").mkdir(parents=True, exist_ok=True)
            link = out / "idt" / "descriptors"
            if not link.exists():
                link.symlink_to(shared.resolve(), target_is_directory=True)
            ov = [f"data.modality={modality}", f"train.seed={seed}", "train.progress=false", "analysis.montage=false"]
            result = run_la_idt(data["train"], out, recipe="la_idt_bench", overrides=ov, redo=self.workflow_redo)
            figures = {}
            for stage in ("ir", "la", "la_idt", "la_joint"):
                ckpt = out / "runs" / stage / "checkpoints" / "last.pt"
                figures[stage] = self.probe(str(ckpt), data)
            clusters = {name: {col: round(v["nmi"], 4) for col, v in e["metrics"].items()}
                        for name, e in result["clusters"]["entries"].items()} if result.get("clusters") else {}
            return {"kind": "workflow", "recipe": "la_idt_bench", "overrides": ov, "seed": seed,
                    "figures": figures, "clusters_nmi": clusters}
        return self.once(run_id, make)


# ----------------------------------------------------------------------------- the groups


def run_group(bench: Bench, group: str, seeds: list[int]) -> None:
    if group == "calibration":
        for seed in seeds:
            for modality in ("rgb", "diff"):
                bench.random(f"random_{modality}_s{seed}", modality, seed)
                bench.pretrain(f"sup3d_{modality}_s{seed}", "supervised_bench", [f"data.modality={modality}"], seed)
            bench.pretrain(f"sup2d_rgb_s{seed}", "supervised_2d_bench", [], seed)
        bench.idt_fv()
    elif group.startswith("la_idt_"):
        modality = group.rsplit("_", 1)[1]
        for seed in seeds:
            bench.random(f"random_{modality}_s{seed}", modality, seed)
            bench.workflow(f"la_idt_{modality}_s{seed}", modality, seed)
    elif group.startswith("rho_"):
        parts = group.split("_")
        method, variant = parts[1], ("camera" if parts[-1] == "camera" else "still")
        tag = "_camera" if variant == "camera" else ""
        for seed in seeds:
            bench.random(f"random_rgb_clips{tag}_s{seed}", "rgb", seed, variant, clips=True)
            for rho, ov in ((2, ["data.views=2", "data.t_max=null"]), (1, ["data.views=2", "data.t_max=0"])):
                bench.pretrain(f"{method}_rho{rho}_rgb{tag}_s{seed}", f"{method}_bench", ["data.modality=rgb", *ov],
                               seed, variant, clips=True)
    else:
        raise SystemExit(f"unknown claim group {group!r} (allowed: {', '.join(GROUPS)})")


# ----------------------------------------------------------------------------- tables


def claim_rows(records: dict[str, dict]) -> list[tuple[str, str, dict[int, float], dict[int, float]]]:
    """(claim, paper's figure, A per seed, B per seed) for the claim A > B."""
    rows = []
    for mod, name in (("rgb", "RGB"), ("diff", "frame differences")):
        wf = f"la_idt_{mod}"

        def stage(s, col="motion", wf=wf):
            return by_seed(records, wf, lambda r: r["figures"][s][col])

        rnd = by_seed(records, f"random_{mod}", lambda r: r["figures"]["motion"])
        rows += [
            (f"LA + IDT > LA, motion, {name}", "Table 1: 72.8 vs 71.4 (UCF101)", stage("la_joint"), stage("la")),
            (f"LA > IR, motion, {name}", "Table 1: 71.4 vs 70.0", stage("la"), stage("ir")),
            (f"LA(IDT, fixed clusters) > LA, motion, {name}", "Table 5 (Ours\\Tune): 72.6 vs 71.4",
             stage("la_idt"), stage("la")),
            (f"IR > random init, motion, {name}", "Table 1: 70.0 vs 42.4", stage("ir"), rnd),
            (f"LA > random init, motion, {name}", "Table 1: 71.4 vs 42.4", stage("la"), rnd),
            (f"LA + IDT > random init, motion, {name}", "Table 1: 72.8 vs 42.4", stage("la_joint"), rnd),
            (f"plain LA clusters follow the scene (NMI scene > motion), {name}", "Fig. 2",
             by_seed(records, wf, lambda r: r["clusters_nmi"]["la"]["appearance"]),
             by_seed(records, wf, lambda r: r["clusters_nmi"]["la"]["label"])),
            (f"IDT clusters follow motion (NMI motion > scene), {name} run", "Fig. 3",
             by_seed(records, wf, lambda r: r["clusters_nmi"]["idt"]["label"]),
             by_seed(records, wf, lambda r: r["clusters_nmi"]["idt"]["appearance"])),
        ]
    for method, paper in (("simclr", "Table 2: 60.5 vs 36.1 (K400)"), ("byol", "Table 2: 65.8 vs 60.6 (K400)")):
        for tag, what in (("", ""), ("_camera", ", panning camera")):
            def fig(rho, key="motion", tag=tag, method=method):
                return by_seed(records, f"{method}_rho{rho}_rgb{tag}", lambda r: r["figures"][key])

            rnd = by_seed(records, f"random_rgb_clips{tag}", lambda r: r["figures"]["motion"])
            title = "rho-BYOL" if method == "byol" else "rho-SimCLR"
            rows.append((f"{title}: rho = 2 > rho = 1, motion, RGB{what}", paper, fig(2), fig(1)))
            rows.append((f"{title}: rho = 2 > rho = 1, motion, RGB{what}, App. B.2 probe on augmented clips",
                         paper, fig(2, "motion_clips"), fig(1, "motion_clips")))
            rows.append((f"{title} rho = 2 > random init, RGB{what}", "Table 2", fig(2), rnd))
    return rows


def claims_table(records: dict[str, dict]) -> str:
    lines = ["| claim (A > B) | paper | A | B | A - B per seed | verdict |", "|---|---|---|---|---|---|"]
    for claim, paper, a, b in claim_rows(records):
        if not a and not b:
            lines.append(f"| {claim} | {paper} | – | – | – | not run yet |")
            continue
        diffs = paired(a, b)
        signs = " ".join(f"{d:+.3f}" for d in diffs.values()) or "–"
        lines.append(f"| {claim} | {paper} | {cell(list(a.values()))} | {cell(list(b.values()))} | {signs} | "
                     f"{verdict(diffs)} |")
    return "\n".join(lines)


CALIBRATION_ROWS = (
    ("supervised 3D R-18", "RGB", "sup3d_rgb"), ("supervised 3D R-18", "frame differences", "sup3d_diff"),
    ("supervised single-frame 2D R-18", "RGB", "sup2d_rgb"), ("random-init 3D R-18", "RGB", "random_rgb"),
    ("random-init 3D R-18", "frame differences", "random_diff"),
)


def calibration_table(records: dict[str, dict]) -> str:
    lines = ["| encoder | input | motion (test) | scene (test) | motion (val) | minutes each |",
             "|---|---|---|---|---|---|"]
    for name, inp, prefix in CALIBRATION_ROWS:
        cols = [by_seed(records, prefix, lambda r, k=k: r["figures"][k])
                for k in ("motion", "appearance", "motion_val")]
        minutes = by_seed(records, prefix, lambda r: r["minutes"])
        lines.append(f"| {name} | {inp} | " + " | ".join(cell(list(c.values())) for c in cols)
                     + f" | {cell(list(minutes.values()), 1)} |")
    idt = records.get("idt_fv")
    if idt:
        f = idt["figures"]
        lines.append(f"| IDT Fisher vectors (linear classifier) | video | {f['motion']:.3f} (1) | "
                     f"{f['appearance']:.3f} (1) | {f['motion_val']:.3f} (1) | {idt['minutes']:.1f} |")
        lines.append(f"\nIDT Fisher vectors, k-means (K = 8, val split): NMI motion {f['kmeans_nmi_motion']:.3f}, "
                     f"scene {f['kmeans_nmi_appearance']:.3f}; largest cluster {100 * f['kmeans_largest']:.0f}% of "
                     "the videos.")
    lines.append("\nChance: 0.125 on both label sets (8 motion classes, 8 scenes).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--claims", default="calibration", help=f"comma-separated groups: {', '.join(GROUPS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="/tmp/vidssl_claims", help="run folders (checkpoints, features, IDT files)")
    ap.add_argument("--store", default=None, help="folder of the per-run JSON figures (default: docs/results/claims)")
    ap.add_argument("--table-only", action="store_true", help="run nothing: rebuild the tables from the store")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workflow-redo", default=None, metavar="STAGE",
                    help="workflows not yet stored start again from this stage (after a recipe change; the "
                         "earlier stages are kept)")
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = RunStore(args.store) if args.store else RunStore()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    start = time.time()
    if not args.table_only:
        bench = Bench(Path(args.out), store, args.threads, args.workflow_redo)
        for group in [g for g in args.claims.split(",") if g]:
            run_group(bench, group, seeds)
    records = store.all()
    claims, calibration = claims_table(records), calibration_table(records)
    print("\n" + calibration + "\n\n" + claims)
    if args.doc:
        note = provenance((time.time() - start) / 60)
        write_section("claims_calibration", calibration + "\n\n" + note, args.doc_path)
        write_section("claims", claims + "\n\n" + note, args.doc_path)


if __name__ == "__main__":
    main()
