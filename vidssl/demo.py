"""``vidssl demo``: the whole pipeline on the built-in data, in minutes on 2 cores.

1. render the built-in dataset (motion-defined classes, appearance drawn
   independently) into ``OUT/data``;
2. train every entry of :data:`ENTRIES` with its tiny recipe (a run directory each,
   resumed if it already exists); the Video LA rows come from one run of the LA + IDT
   workflow (``vidssl workflow la-idt``, recipe ``la_idt_tiny``, into ``OUT/la_idt``):
   IDT extraction, Fisher vectors, IR warm-up, then plain LA and LA with the IDT prior;
3. evaluate each encoder, frozen, with a linear probe and weighted kNN on the motion
   labels, and a linear probe on the appearance labels;
4. print a table and write ``OUT/results.json``, ``OUT/report.md`` and plots;
5. write the comparison report ``OUT/compare/report.html`` (``vidssl compare``: linear,
   kNN and retrieval of every run, t-SNE pictures and retrieval grids).

A new method shows in the demo by adding its entry to :data:`ENTRIES`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from vidssl.config import did_you_mean, load_config
from vidssl.errors import ConfigError


@dataclass
class DemoEntry:
    name: str  # row of the table
    recipe: str  # packaged recipe name
    train: bool = True  # False: frozen random weights of the recipe's backbone
    overrides: list[str] = field(default_factory=list)
    stage: Optional[str] = None  # a training stage of the workflow recipe ``recipe`` (la-idt)

    @property
    def slug(self) -> str:
        if self.stage:
            return f"{self.recipe}_{self.stage}"
        return self.recipe + ("_random" if not self.train else "")


ENTRIES: list[DemoEntry] = [
    DemoEntry("random init (3D R-18)", "supervised_tiny", train=False),
    DemoEntry("supervised 3D R-18", "supervised_tiny"),
    DemoEntry("supervised 2D R-18 (single frames)", "supervised_2d_tiny"),
    DemoEntry("Video IR (3D R-18)", "ir_tiny"),
    DemoEntry("Video LA (3D R-18)", "la_idt_tiny", stage="la"),
    DemoEntry("Video LA + IDT prior (3D R-18)", "la_idt_tiny", stage="la_joint"),
    DemoEntry("rho-SimCLR rho=2 (3D R-18)", "simclr_tiny"),  # the best of the four on 2 cores (docs/results.md)
    DemoEntry("random init (stacked-frame 2D R-18)", "cpc_tiny", train=False),
    DemoEntry("video CPC (stacked-frame 2D R-18)", "cpc_tiny"),
]

# (column title, protocol, label column)
EVALS = [
    ("motion linear", "linear", "label"),
    ("motion kNN", "knn", "label"),
    ("appearance linear", "linear", "appearance"),
]


def run_demo(out: str | Path = "runs/demo", videos: int | None = None, epochs: int | None = None,
             only: list[str] | None = None, progress: bool = True, overrides: list[str] = ()) -> dict:
    """Run the demo; returns {entry name: {column: accuracy}}.

    ``overrides`` (``key=value``) apply to every recipe, e.g. a smaller model for a quick look.
    """
    from vidssl.data.synthetic import make_synthetic
    from vidssl.engine.trainer import train
    from vidssl.eval.protocols import evaluate

    check_demo_args(only, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    print(f"[demo] rendering the built-in dataset into {out / 'data'}")
    synth_kwargs = {"videos": videos} if videos else {}
    manifests = make_synthetic(out / "data", **synth_kwargs)
    train_csv, test_csv = str(manifests["train"]), str(manifests["test"])
    shared = [f"train.progress={str(progress).lower()}"]  # every recipe and workflow stage
    if epochs is not None:
        shared.append(f"train.epochs={epochs}")
    shared += list(overrides)
    common = [f"data.train={train_csv}", *shared]  # the workflow takes the manifest itself

    results: dict[str, dict] = {}
    runs: dict[str, str] = {}
    workflows: dict[str, Path] = {}  # workflow recipe -> its output folder, run once for all its entries
    for entry in ENTRIES:
        if only and entry.slug not in only and entry.recipe not in only:
            continue
        overrides = common + entry.overrides
        if entry.stage:
            if entry.recipe not in workflows:
                workflows[entry.recipe] = run_workflow(entry.recipe, train_csv, out, shared + entry.overrides,
                                                       progress)
            run_dir = workflows[entry.recipe] / "runs" / entry.stage
            checkpoint, recipe, eval_overrides = str(run_dir / "checkpoints" / "last.pt"), None, []
            runs[entry.name] = str(run_dir)
        elif entry.train:
            print(f"[demo] training {entry.name} ({entry.recipe})")
            cfg = load_config(entry.recipe, overrides)
            run_dir = train(cfg, run_dir=out / "runs" / entry.slug, resume=True)
            checkpoint, recipe, eval_overrides = str(Path(run_dir) / "checkpoints" / "last.pt"), None, []
            runs[entry.name] = str(run_dir)
        else:
            checkpoint, recipe, eval_overrides = "random", entry.recipe, overrides
        row = {}
        for title, protocol, column in EVALS:
            metrics = evaluate(protocol, checkpoint, train_csv, test_csv, eval_overrides, column,
                               progress=progress, recipe=recipe)
            row[title] = metrics["top1"]
        results[entry.name] = row
        print(f"[demo] {entry.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))

    table = format_table(results)
    print()
    print(table)
    elapsed = time.time() - start
    print(f"\n[demo] done in {elapsed / 60:.1f} min; results in {out}")
    (out / "results.json").write_text(json.dumps({"results": results, "runs": runs, "seconds": elapsed}, indent=2))
    (out / "report.md").write_text(
        "# vidssl demo\n\nFrozen-encoder accuracy on the built-in dataset (motion-defined classes; "
        "appearance drawn independently of the class).\n\n" + table + "\n"
    )
    plot_results(results, runs, out)
    # the comparison report: the trained runs and the random-init reference on common
    # ground, with t-SNE pictures and retrieval grids; features come from the cache filled above
    from vidssl.viz.compare import write_comparison

    random_specs = [f"random:{e.recipe}" for e in ENTRIES if not e.train and e.name in results]
    if runs or random_specs:
        print("[demo] writing the comparison report")
        report = write_comparison(random_specs + list(runs.values()), train_csv, test_csv, out / "compare",
                                  progress=progress)
        print(f"[demo] report: {report}")
    return results


def check_demo_args(only: list[str] | None, overrides: list[str]) -> None:
    """Refuse an unknown ``only`` entry and a bad override before anything is rendered."""
    names = sorted({e.slug for e in ENTRIES} | {e.recipe for e in ENTRIES})
    for name in only or []:
        if name not in names:
            raise ConfigError(f"--only {name!r}: no such demo entry ({did_you_mean(name, names)}"
                              f"entries: {', '.join(names)})")
    for entry in ENTRIES:
        if not entry.stage and (not only or entry.slug in only or entry.recipe in only):
            load_config(entry.recipe, [*overrides, *entry.overrides])  # ConfigError naming the key


def run_workflow(recipe: str, train_csv: str, out: Path, overrides: list[str], progress: bool) -> Path:
    """Run (or resume) the la-idt workflow ``recipe`` on the training videos into ``OUT/la_idt``."""
    from vidssl.workflow.la_idt import run_la_idt

    folder = out / "la_idt"
    print(f"[demo] running the LA + IDT workflow ({recipe}) into {folder}")
    run_la_idt(train_csv, folder, recipe, overrides, progress=progress)
    return folder


def format_table(results: dict[str, dict]) -> str:
    """A Markdown table: one row per entry, one column per evaluation."""
    cols = [title for title, _, _ in EVALS]
    name_w = max([len("encoder")] + [len(n) for n in results])
    lines = ["| " + "encoder".ljust(name_w) + " | " + " | ".join(cols) + " |",
             "|" + "-" * (name_w + 2) + "|" + "|".join("-" * (len(c) + 2) for c in cols) + "|"]
    for name, row in results.items():
        cells = [f"{row.get(c, float('nan')):.3f}".rjust(len(c)) for c in cols]
        lines.append("| " + name.ljust(name_w) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(results: dict[str, dict], runs: dict[str, str], out: Path) -> None:
    """accuracy.png (grouped bars) and loss.png (training loss of each trained entry)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [title for title, _, _ in EVALS]
    names = list(results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4))
    w = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ax.bar(x + (i - (len(cols) - 1) / 2) * w, [results[n].get(c, 0) for n in names], w, label=c)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("frozen encoders on the built-in dataset")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, run_dir in runs.items():
        steps, losses = [], []
        metrics = Path(run_dir) / "metrics.jsonl"
        if not metrics.is_file():
            continue
        for line in metrics.read_text().splitlines():
            rec = json.loads(line)
            if "loss" in rec and "step" in rec:
                steps.append(rec["step"])
                losses.append(rec["loss"])
        ax.plot(steps, losses, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)
