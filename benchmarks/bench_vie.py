"""VIE's Table 1 on the benchmark-size built-in dataset: linear read-outs at conv3 / conv4 / conv5 of
every VIE family trained with LA, on the motion and on the appearance labels.

    python benchmarks/bench_vie.py [--families random,single,3dresnet,trn,slow,slowfast,twostream_s,twostream_sf]
        [--input-single 3dresnet,trn,slow,slowfast] [--seeds 0,1,2] [--epochs 20] [--static]
        [--static-families random,single,slow] [--out /tmp/vidssl_vie] [--store docs/results/vie]
        [--table-only] [--no-doc]

Data: ``builtin-bench:`` (1,200 / 300 / 600 train / val / test videos, 8 motion classes crossed
with 8 photograph scenes; see bench_claims.py). Every family is its tiny LA recipe,
``vie_<family>_la_tiny`` (App. B's sampling scaled to 2.56 s videos of 64 px: see the recipes),
pretrained on the training videos for ``--epochs`` epochs (the recipes' 20 by default; the IR
warm-up keeps the paper's fifth of the run), then read out as VIE Sec. 4 does (``vidssl eval
readout``: the stage map averaged over time, pooled to a grid, a linear probe) at conv3, conv4
and conv5, trained on the training videos and tested on the test videos, once with the motion
labels and once with the scene labels (``appearance``; VIE's ImageNet column is the static
probe below). ``random`` is Table 1's "Random": a randomly initialised VIE-Single network.

Input-Single controls (App. C, Table 4; ``--input-single``): the VIE-Single run of the same seed
read out with a multi-frame family's frames, the per-frame outputs averaged
(``vie_input_single_<family>_tiny``: its data keys become overrides of the Single checkpoint).

``--static`` (VIE Sec. 4's ImageNet transfer, "static videos"): the centre frame of every
training and test video written as an image (OUT/static), each read as a static video (backend
``image``: the image tiled over time), read out on the scene labels for ``--static-families``.

Each finished run is stored as ``STORE/<run id>.json`` (run ids ``<row>_e<epochs>_s<seed>``, Random's
too, though it trains nothing) and skipped next time; training runs resume from OUT. The table is built from the store for the
chosen ``--epochs`` (``--table-only`` runs nothing) and written to docs/results.md, section
``vie`` (``vie/epochs=N`` for other epoch counts), with the paired claims of the paper.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: on a shared CPU, threads spinning on a descheduled sibling made the
# read-out's linear probes 6-10x slower here (see bench_backbones.py --compare-omp-wait)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from vidssl.config import load_config, to_dict  # noqa: E402
from vidssl.data.builtin import resolve_builtin  # noqa: E402
from vidssl.engine.trainer import train  # noqa: E402
from vidssl.eval.features import make_context  # noqa: E402
from vidssl.eval.protocols import evaluate_context, resolve_checkpoint  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_claims import Bench  # noqa: E402
from claims_store import STORE, RunStore, cell, paired, verdict  # noqa: E402

FAMILIES = {  # row -> (Table 1 label, recipe); "random" is read out from the recipe, untrained
    "random": ("Random", "vie_single_la_tiny"),
    "single": ("VIE-Single", "vie_single_la_tiny"),
    "trn": ("VIE-TRN", "vie_trn_la_tiny"),
    "3dresnet": ("VIE-3DResNet", "vie_3dresnet_la_tiny"),
    "slow": ("VIE-Slow", "vie_slow_la_tiny"),
    "slowfast": ("VIE-SlowFast", "vie_slowfast_la_tiny"),
    "twostream_s": ("VIE-TwoStream-S", "vie_twostream_s_la_tiny"),
    "twostream_sf": ("VIE-TwoStream-SF", "vie_twostream_sf_la_tiny"),
}
INPUT_SINGLE = {"3dresnet": "3DResNet", "trn": "TRN", "slow": "Slow", "slowfast": "SlowFast"}
LAYERS = ("conv3", "conv4", "conv5")
LABELS = (("motion", "label"), ("appearance", "appearance"))
RECIPE_EPOCHS = 20  # the tiny recipes' train.epochs


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def recipe_overrides(recipe: str, base: str) -> list[str]:
    """``data.KEY=VALUE`` for every data key where ``recipe`` differs from ``base`` (JSON is YAML)."""
    mine, theirs = flat(to_dict(load_config(recipe).data), "data."), flat(to_dict(load_config(base).data), "data.")
    return [f"{k}={json.dumps(v)}" for k, v in mine.items() if theirs.get(k) != v]


def training_overrides(epochs: int) -> list[str]:
    """The epoch count, and LA's IR warm-up at the paper's share of the run (40 of 200 epochs)."""
    return [f"train.epochs={epochs}", f"method.ir_warmup_epochs={round(epochs / 5)}"]


class VIEBench(Bench):
    def __init__(self, out: Path, store: RunStore, threads: int, epochs: int, max_steps: int | None = None,
                 small: bool = False):
        super().__init__(out, store, threads)
        self.epochs, self.max_steps, self.small = epochs, max_steps, small

    def data(self, variant: str = "still") -> dict[str, str]:
        if self.small:  # the small built-in dataset (a wiring check; its test split doubles as val)
            return {s: resolve_builtin(f"builtin:{'test' if s == 'val' else s}") for s in ("train", "val", "test")}
        return super().data(variant)

    def rid(self, row: str, seed: int) -> str:
        return f"{row}_e{self.epochs}_s{seed}"

    def trained(self, family: str, seed: int) -> tuple[Path, float]:
        """The checkpoint of ``vie_<family>_la_tiny`` at ``seed`` (trained here unless done) and its minutes."""
        run_dir = self.out / "runs" / self.rid(family, seed)
        ov = [f"train.seed={seed}", "train.progress=false", f"data.train={self.data()['train']}",
              *training_overrides(self.epochs)]
        if self.max_steps:
            ov.append(f"train.max_steps_per_epoch={self.max_steps}")
        run_dir = Path(train(load_config(FAMILIES[family][1], ov), run_dir=run_dir, resume=True))
        summary = json.loads((run_dir / "summary.json").read_text())
        return run_dir / "checkpoints" / "last.pt", round(summary["seconds"] / 60, 2)

    def readout(self, checkpoint: str, data: dict[str, str], recipe: str | None = None, overrides=(),
                labels=LABELS) -> dict:
        """{label kind: {layer: top-1}} of ``vidssl eval readout`` (train on train, test on test)."""
        out = {}
        for kind, column in labels:
            ctx = make_context(resolve_checkpoint(str(checkpoint)), data["train"], data["test"], list(overrides),
                               column, progress=False, recipe=recipe)
            metrics = evaluate_context("readout", ctx)
            out[kind] = {layer: metrics["layers"][layer]["top1"] for layer in LAYERS}
        return out

    def family(self, family: str, seed: int) -> dict:
        def make():
            recipe = FAMILIES[family][1]
            if family == "random":
                ov = [f"train.seed={seed}"]
                return {"kind": "random", "recipe": recipe, "overrides": ov, "seed": seed,
                        "figures": self.readout("random", self.data(), recipe, ov)}
            ckpt, minutes = self.trained(family, seed)
            t0 = time.time()
            figures = self.readout(ckpt, self.data())
            return {"kind": "pretrain", "recipe": recipe, "epochs": self.epochs, "seed": seed, "figures": figures,
                    "train_minutes": minutes, "readout_minutes": round((time.time() - t0) / 60, 2)}
        return self.once(self.rid(family, seed), make)

    def input_single(self, family: str, seed: int) -> dict:
        """App. C: the VIE-Single checkpoint of ``seed`` with ``family``'s frames, outputs averaged."""
        def make():
            ckpt, _ = self.trained("single", seed)
            ov = recipe_overrides(f"vie_input_single_{family}_tiny", "vie_single_la_tiny")
            return {"kind": "input_single", "family": family, "epochs": self.epochs, "seed": seed, "overrides": ov,
                    "figures": self.readout(ckpt, self.data(), overrides=ov)}
        return self.once(self.rid(f"input_single_{family}", seed), make)

    def static_data(self) -> dict[str, str]:
        """OUT/static/{train,test}.csv: the centre frame of every train / test video as a PNG, labelled
        by its scene (column ``label``; the motion class in ``motion``)."""
        import cv2

        from vidssl.data.manifests import load_manifest, write_manifest
        from vidssl.data.video import probe, read_frames

        out = {}
        for split in ("train", "test"):
            csv = self.out / "static" / f"{split}.csv"
            if not csv.is_file():
                m = load_manifest(self.data()[split], label_column="appearance")
                folder = self.out / "static" / split
                folder.mkdir(parents=True, exist_ok=True)
                paths = []
                for i, video in enumerate(m.paths):
                    png = folder / f"{i:05d}.png"
                    if not png.is_file():
                        frame = read_frames(video, [probe(video).num_frames // 2])[0]
                        cv2.imwrite(str(png), frame[..., ::-1])  # RGB -> BGR on disk
                    paths.append(str(png))
                write_manifest(csv, paths, [m.classes[y] for y in m.labels],
                               motion=m.columns.get("label", [""] * len(paths)))
            out[split] = str(csv)
        return out

    def static(self, family: str, seed: int) -> dict:
        """Scene read-out of single frames read as static videos (VIE Sec. 4's ImageNet transfer)."""
        def make():
            data = self.static_data()
            ov = ["data.backend=image"]
            if family == "random":
                figures = self.readout("random", data, FAMILIES["random"][1], [*ov, f"train.seed={seed}"],
                                       labels=(("static", "label"),))
            else:
                ckpt, _ = self.trained(family, seed)
                figures = self.readout(ckpt, data, overrides=ov, labels=(("static", "label"),))
            return {"kind": "static", "family": family, "epochs": self.epochs, "seed": seed, "figures": figures}
        return self.once(self.rid(f"static_{family}", seed), make)


def by_seed(records: dict, row: str, epochs: int, kind: str, layer: str) -> dict[int, float]:
    out = {}
    for rid, rec in records.items():
        if rid.startswith(f"{row}_e{epochs}_s") and rid.rsplit("_s", 1)[1].isdigit():
            out[int(rid.rsplit("_s", 1)[1])] = rec["figures"][kind][layer]
    return out


def table(records: dict, epochs: int) -> str:
    head = ("| model | " + " | ".join(f"motion {x}" for x in LAYERS) + " | "
            + " | ".join(f"appearance {x}" for x in LAYERS) + " |")
    lines = [head, "|---" * 7 + "|"]

    def row(label: str, rid: str) -> None:
        cells = [cell(list(by_seed(records, rid, epochs, kind, x).values())) for kind, _ in LABELS for x in LAYERS]
        if any(c != "–" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for fam, (label, _) in FAMILIES.items():
        row(label, fam)
    inputs = [(f"{name}-Input-Single", f"input_single_{fam}") for fam, name in INPUT_SINGLE.items()]
    if any(by_seed(records, rid, epochs, "motion", "conv5") for _, rid in inputs):
        lines += ["", "Input-Single controls (App. C, Table 4): VIE-Single read out on a family's frames, "
                  "the per-frame outputs averaged:", "", head, lines[1]]
        for label, rid in inputs:
            row(label, rid)
    statics = [(FAMILIES[f][0], f"static_{f}") for f in FAMILIES]
    if any(by_seed(records, rid, epochs, "static", "conv5") for _, rid in statics):
        lines += ["", "Static images (VIE Sec. 4's ImageNet column): the centre frame of each video read as a "
                  "static video, scene labels:", "", "| model | " + " | ".join(LAYERS) + " |", "|---|---|---|---|"]
        for label, rid in statics:
            cells = [cell(list(by_seed(records, rid, epochs, "static", x).values())) for x in LAYERS]
            if any(c != "–" for c in cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    claims = [(f"{FAMILIES[f][0]} > VIE-Single (motion, conv5)", f, "single", "motion")
              for f in ("trn", "3dresnet", "slow", "slowfast")]
    claims += [("VIE-TwoStream-S > VIE-Slow (motion, conv5)", "twostream_s", "slow", "motion"),
               ("VIE-TwoStream-SF > VIE-SlowFast (motion, conv5)", "twostream_sf", "slowfast", "motion"),
               ("VIE-Single > Random (motion, conv5)", "single", "random", "motion")]
    claims += [(f"{FAMILIES[f][0]} > {INPUT_SINGLE[f]}-Input-Single (motion, conv5)", f, f"input_single_{f}",
                "motion") for f in INPUT_SINGLE]
    claims += [(f"VIE-Single > {FAMILIES[f][0]} on static images (conv5)", "static_single", f"static_{f}", "static")
               for f in ("slow", "slowfast", "3dresnet", "trn")]
    lines += ["", "The paper's claims, paired by seed (A - B per seed; verdict rule of claims_store):", "",
              "| claim (A > B) | A | B | A - B per seed | verdict |", "|---|---|---|---|---|"]
    for claim, a_id, b_id, kind in claims:
        a, b = by_seed(records, a_id, epochs, kind, "conv5"), by_seed(records, b_id, epochs, kind, "conv5")
        if not a and not b:
            continue
        diffs = paired(a, b)
        lines.append(f"| {claim} | {cell(list(a.values()))} | {cell(list(b.values()))} | "
                     f"{' '.join(f'{d:+.3f}' for d in diffs.values()) or '–'} | "
                     f"{verdict(diffs) if a and b else 'not run yet'} |")
    times = []
    for fam, (label, _) in FAMILIES.items():
        minutes = [r["train_minutes"] for rid, r in records.items()
                   if rid.startswith(f"{fam}_e{epochs}_s") and "train_minutes" in r]
        reads = [r["minutes"] - r["train_minutes"] for rid, r in records.items()
                 if rid.startswith(f"{fam}_e{epochs}_s") and "train_minutes" in r]
        if minutes:
            times.append(f"{label} {cell(minutes, 1)} min training + {cell(reads, 1)} read-out")
    lines.append(f"\nChance: 0.125 on every label set. Pretraining: {epochs} epochs on the 1,200 training videos "
                 f"({round(epochs / 5)} of IR, then LA); 2 CPU cores" + (": " + "; ".join(times) if times else "") + ".")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES), help=f"comma-separated: {', '.join(FAMILIES)}")
    ap.add_argument("--input-single", default=",".join(INPUT_SINGLE),
                    help=f"Input-Single controls (App. C), comma-separated: {', '.join(INPUT_SINGLE)}; '' for none")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=RECIPE_EPOCHS, help="training epochs per run (the recipes': 20)")
    ap.add_argument("--static", action="store_true", help="also the static-image probe (scene labels)")
    ap.add_argument("--static-families", default="random,single,slow")
    ap.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (a wiring check, not a result)")
    ap.add_argument("--small", action="store_true", help="the small built-in dataset (a wiring check)")
    ap.add_argument("--out", default="/tmp/vidssl_vie", help="run folders, static images, feature cache")
    ap.add_argument("--store", default=str(STORE.parent / "vie"), help="folder of the per-run JSON figures")
    ap.add_argument("--table-only", action="store_true", help="run nothing: rebuild the table from the store")
    ap.add_argument("--threads", type=int, default=2)
    from results_doc import add_doc_argument, provenance, section_name, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("VIDSSL_CACHE", str(Path(args.out) / "cache"))
    if args.small or args.max_steps:  # a wiring check: its figures go beside the runs, never into the doc
        args.store, args.doc = str(Path(args.out) / "check_store"), False
    store = RunStore(args.store)
    start = time.time()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    pick = {name: [x for x in getattr(args, name).split(",") if x] for name in ("families", "input_single",
                                                                              "static_families")}
    for name, allowed in (("families", FAMILIES), ("input_single", INPUT_SINGLE), ("static_families", FAMILIES)):
        bad = [x for x in pick[name] if x not in allowed]
        if bad:
            raise SystemExit(f"unknown --{name.replace('_', '-')} {bad[0]!r} (allowed: {', '.join(allowed)})")
    if not args.table_only:
        bench = VIEBench(Path(args.out), store, args.threads, args.epochs, args.max_steps, args.small)
        for seed in seeds:
            for fam in pick["families"]:
                bench.family(fam, seed)
            for fam in pick["input_single"]:
                bench.input_single(fam, seed)
            if args.static:
                for fam in pick["static_families"]:
                    bench.static(fam, seed)
    text = table(store.all(), args.epochs)
    print("\n" + text)
    if args.doc:
        write_section(section_name("vie", args, ap, ["epochs"]), text + "\n\n" + provenance((time.time() - start) / 60),
                      args.doc_path)


if __name__ == "__main__":
    main()
