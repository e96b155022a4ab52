"""Downstream tasks beyond single labels, from the CLI: multi-label mAP, direction-sensitive
classes with horizontal flipping on and off, and the pretraining-data scale curve.

    python benchmarks/bench_downstream.py [--parts multilabel,direction,scale] [--seeds 0,1,2]
        [--out /tmp/vidssl_downstream] [--store docs/results/downstream] [--table-only]

Every pretraining and evaluation is a ``vidssl`` command (``vidssl pretrain``, ``vidssl eval
... --json``, ``vidssl compare``) run as a subprocess; each finished run's figures are kept
as ``<store>/<run id>.json`` and not run again, so the tables can be completed over several
sittings (the conventions of ``claims_store.py``). The self-supervised method is video CPC
on frame differences, the method that learns the motion of this data (``bench_cpc.py``).

- ``multilabel`` (large-scale study App. B.4): ``cpc_bench`` pretrained on
  ``builtin-bench:train`` against its random-init network; the frozen linear probe with a
  sigmoid per class and BCE on label sets {motion class, scene}
  (``vidssl.data.label_groups``), video mAP (max over the views) on the test videos.
- ``direction`` (App. B.5, SSv2-style): ``cpc_tiny`` pretrained on
  ``builtin-direction:train`` (move_left / move_right / move_up / move_down) with
  ``data.augment.flip`` false and true, the same switch in the probe; the probe on augmented
  clips (``linear_clips``, where flipping acts) on the left/right videos only: 0.5 =
  left and right confused, 1 = separated; and the 4-class frozen linear probe against the
  random-init network.
- ``scale`` (dense-trajectory paper Sec. 4.7, Fig. 4): ``cpc_bench`` on 25 %, 50 % and
  100 % of the pretraining videos (``data.subset``, nested draws; the same number of
  epochs, so fewer steps on fewer videos), motion linear probe; the curve is drawn by
  ``vidssl compare`` into ``docs/results/downstream_scale/data_scale.png``.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims_store import STORE, RunStore, cell, paired, verdict  # noqa: E402

from vidssl.data.builtin import resolve_builtin  # noqa: E402

DIFF = ["data.modality=diff"]
LR = ("move_left", "move_right")
FRACTIONS = (0.25, 0.5, 1.0)


class Downstream:
    def __init__(self, out: Path, store: RunStore):
        self.out, self.store = out, store
        out.mkdir(parents=True, exist_ok=True)

    def vidssl(self, *args: str) -> None:
        cmd = [sys.executable, "-m", "vidssl", *args]
        print("[downstream] $ vidssl " + " ".join(args), flush=True)
        subprocess.run(cmd, check=True)

    def pretrain(self, run_id: str, recipe: str, overrides: list[str]) -> Path:
        run = self.out / "runs" / run_id
        if not (run / "summary.json").is_file():
            self.vidssl("pretrain", recipe, "--run-dir", str(run), "train.progress=false", *overrides)
        return run

    def evaluate(self, protocol: str, checkpoint: str, train: str, test: str, overrides=(), config=None,
                 label_column=None) -> dict:
        out = self.out / "evals" / f"{time.time_ns()}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        args = ["eval", protocol, "--checkpoint", checkpoint, "--train", train, "--test", test, "--json", str(out),
                "--quiet"]
        if config:
            args += ["--config", config]
        if label_column:
            args += ["--label-column", label_column]
        self.vidssl(*args, *overrides)
        return json.loads(out.read_text())

    def once(self, run_id: str, make) -> dict:
        return self.store.once(run_id, make, "downstream")

    # ------------------------------------------------------------------ data

    def multilabel_manifests(self) -> dict[str, str]:
        from vidssl.data.label_groups import write_multilabel_manifest

        return {s: str(write_multilabel_manifest(resolve_builtin(f"builtin-bench:{s}"), self.out / f"ml_{s}.csv"))
                for s in ("train", "test")}

    def left_right_manifests(self) -> dict[str, str]:
        """The move_left / move_right videos of the direction data, as their own manifests."""
        out = {}
        for split in ("train", "test"):
            src = Path(resolve_builtin(f"builtin-direction:{split}"))
            with open(src, newline="") as f:
                rows = list(csv.DictReader(f))
            dst = self.out / f"lr_{split}.csv"
            with open(dst, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                for r in rows:
                    if r["label"] in LR:
                        r["path"] = str((src.parent / r["path"]).resolve()) if not Path(r["path"]).is_absolute() \
                            else r["path"]
                        w.writerow(r)
            out[split] = str(dst)
        return out

    # ------------------------------------------------------------------ parts

    def multilabel(self, seed: int) -> None:
        data = self.multilabel_manifests()

        def probe(ckpt, config=None, ov=()):
            r = self.evaluate("linear", ckpt, data["train"], data["test"], [*ov, f"train.seed={seed}"], config,
                              )
            return {k: r[k] for k in ("mAP", "clip_mAP", "classes_scored") if k in r}

        run = self.pretrain(f"cpc_diff_s{seed}", "cpc_bench", [*DIFF, f"train.seed={seed}"])
        self.once(f"multilabel_cpc_s{seed}", lambda: {"part": "multilabel", "seed": seed, "source": "cpc",
                                                      "figures": probe(str(run))})
        self.once(f"multilabel_random_s{seed}", lambda: {"part": "multilabel", "seed": seed, "source": "random",
                                                         "figures": probe("random", "cpc_bench", DIFF)})

    def direction(self, seed: int) -> None:
        lr = self.left_right_manifests()
        full = {s: f"builtin-direction:{s}" for s in ("train", "test")}
        for flip in ("false", "true"):
            sw = [f"data.augment.flip={flip}"]
            run = self.pretrain(f"direction_cpc_flip{flip}_s{seed}", "cpc_tiny",
                                [*DIFF, *sw, f"train.seed={seed}", "data.train=builtin-direction:train"])

            def figures(ckpt, config=None, ov=(), sw=sw):
                ov = [*ov, *sw, f"train.seed={seed}"]
                clips = self.evaluate("linear_clips", ckpt, lr["train"], lr["test"], ov, config)
                four = self.evaluate("linear", ckpt, full["train"], full["test"], ov, config)
                return {"left_right_clips": clips["top1"], "four_class": four["top1"]}

            on = flip == "true"
            self.once(f"direction_cpc_flip{flip}_s{seed}",
                      lambda run=run, figures=figures, on=on: {"part": "direction", "seed": seed, "source": "cpc",
                                                               "flip": on, "figures": figures(str(run))})
            self.once(f"direction_random_flip{flip}_s{seed}",
                      lambda figures=figures, on=on: {"part": "direction", "seed": seed, "source": "random",
                                                      "flip": on, "figures": figures("random", "cpc_tiny", DIFF)})

    def scale(self, seed: int) -> list[Path]:
        runs = []
        for frac in FRACTIONS:
            ov = [*DIFF, f"train.seed={seed}"] + ([f"data.subset={frac}"] if frac < 1 else [])
            run = self.pretrain(f"cpc_diff_s{seed}" if frac == 1 else f"cpc_diff_sub{frac:g}_s{seed}", "cpc_bench", ov)
            runs.append(run)

            def make(run=run, frac=frac):
                r = self.evaluate("linear", str(run), "builtin-bench:train", "builtin-bench:test", [f"train.seed={seed}"])
                videos = json.loads((run / "summary.json").read_text()).get("train_videos")
                return {"part": "scale", "seed": seed, "fraction": frac, "train_videos": videos,
                        "figures": {"top1": r["top1"]}}
            self.once(f"scale_f{frac:g}_s{seed}", make)
        return runs


def table(records: dict[str, dict]) -> str:
    def by(part, **match):
        return {r["seed"]: r for r in records.values()
                if r.get("part") == part and all(r.get(k) == v for k, v in match.items())}

    lines = ["| task | metric | CPC (frame differences) | random init | CPC - random per seed | CPC > random |",
             "|---|---|---|---|---|---|"]
    a, b = by("multilabel", source="cpc"), by("multilabel", source="random")
    fa, fb = ({s: r["figures"]["mAP"] for s, r in d.items()} for d in (a, b))
    d = paired(fa, fb)
    lines.append(f"| multi-label (motion class + scene) | video mAP, linear | {cell(list(fa.values()))} | "
                 f"{cell(list(fb.values()))} | {' '.join(f'{x:+.3f}' for x in d.values()) or '–'} | {verdict(d)} |")
    for flip in (False, True):
        a, b = by("direction", source="cpc", flip=flip), by("direction", source="random", flip=flip)
        for key, label in (("four_class", "4 directions, top-1, linear"),
                           ("left_right_clips", "left vs right, top-1, clip probe")):
            fa, fb = ({s: r["figures"][key] for s, r in x.items()} for x in (a, b))
            d = paired(fa, fb)
            lines.append(f"| direction, flip {'on' if flip else 'off'} | {label} | {cell(list(fa.values()))} | "
                         f"{cell(list(fb.values()))} | {' '.join(f'{x:+.3f}' for x in d.values()) or '–'} | "
                         f"{verdict(d)} |")
    on, off = ({s: r["figures"]["left_right_clips"] for s, r in by("direction", source="cpc", flip=f).items()}
               for f in (True, False))
    d = paired(off, on)
    lines += ["", "| claim | per seed | verdict |", "|---|---|---|",
              f"| left vs right: flip off > flip on (CPC, clip probe) | "
              f"{' '.join(f'{x:+.3f}' for x in d.values()) or '–'} | {verdict(d)} |"]
    lines += ["", "| pretraining videos | share | motion linear top-1 (CPC) |", "|---|---|---|"]
    for frac in FRACTIONS:
        rs = [r for r in records.values() if r.get("part") == "scale" and r["fraction"] == frac]
        videos = sorted({r["train_videos"] for r in rs if r.get("train_videos")})
        lines.append(f"| {', '.join(map(str, videos)) or '–'} | {frac:.0%} | "
                     f"{cell([r['figures']['top1'] for r in rs])} |")
    small, big = ({r["seed"]: r["figures"]["top1"] for r in records.values()
                   if r.get("part") == "scale" and r["fraction"] == f} for f in (0.25, 1.0))
    d = paired(big, small)
    lines.append(f"\n100 % > 25 % of the pretraining videos: {' '.join(f'{x:+.3f}' for x in d.values()) or '–'} "
                 f"({verdict(d)}). Chance: 0.25 (4 directions), 0.5 (left/right), 0.125 (motion); "
                 "a random scorer's mAP is the mean share of positives per class.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="multilabel,direction,scale")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="/tmp/vidssl_downstream")
    ap.add_argument("--store", default=str(STORE.parent / "downstream"))
    ap.add_argument("--table-only", action="store_true")
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    store = RunStore(args.store)
    start = time.time()
    if not args.table_only:
        bench = Downstream(Path(args.out), store)
        parts = [p for p in args.parts.split(",") if p]
        unknown = set(parts) - {"multilabel", "direction", "scale"}
        if unknown:
            raise SystemExit(f"unknown part(s) {sorted(unknown)} (allowed: multilabel, direction, scale)")
        scale_runs = []
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            for part in parts:
                got = getattr(bench, part)(seed)
                if part == "scale":
                    scale_runs += got
        if scale_runs:
            png_dir = Path(args.store).parent / "downstream_scale"
            bench.vidssl("compare", *map(str, scale_runs), "--train", "builtin-bench:train", "--test",
                         "builtin-bench:test", "--evals", "linear", "--out", str(bench.out / "compare"), "--quiet")
            png_dir.mkdir(parents=True, exist_ok=True)
            made = bench.out / "compare" / "data_scale.png"
            if made.is_file():
                (png_dir / "data_scale.png").write_bytes(made.read_bytes())
    text = table(store.all())
    print("\n" + text)
    if args.doc:
        write_section("downstream", text + "\n\n" + provenance((time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
