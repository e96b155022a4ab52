"""The comparison report (``vidssl compare``): several runs, one table, pictures.

Evaluates every run with the chosen protocols (:func:`vidssl.eval.protocols.evaluate_context`,
one feature extraction per run shared by its protocols) and writes ``report.md``,
``report.html`` (self-contained; images by relative path) and ``metrics.json`` into
``--out``: a table with a row per run, or per ``<name>_seed<k>`` group with the mean
and spread over seeds, and per run a t-SNE of the test embeddings and, with
``retrieval``, the grid of nearest neighbours. Runs pretrained on different numbers of
videos (``data.subset``) also get ``data_scale.png``: the first column against the number
of pretraining videos, one line per method (mean and spread over seeds).

A RUN is a run directory, a checkpoint (.pt), or ``random:RECIPE`` (frozen random
weights of the recipe's backbone, the random-init reference).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from vidssl.config import find_recipe
from vidssl.errors import ConfigError
from vidssl.eval.features import make_context
from vidssl.eval.protocols import DEFAULT_EVALS, PROTOCOLS, evaluate_context, resolve_checkpoint
from vidssl.viz.data_scale import plot_data_scale, pretraining_videos
from vidssl.viz.report import build_rows, markdown_table, write_report
from vidssl.viz.tsne import save_tsne

# the table's columns per protocol: (metric key, column title)
COLUMNS = {
    "linear": [("top1", "linear top1"), ("clip_top1", "linear clip top1")],
    "knn": [("top1", "kNN top1")],
    "retrieval": [("recall@1", "R@1"), ("recall@5", "R@5")],
    "fewshot": [("1shot", "1-shot"), ("5shot", "5-shot"), ("frac0.05", "5 % labels"), ("all", "all labels")],
    "finetune": [("top1", "finetune top1"), ("clip_top1", "finetune clip top1")],
    "persistence": [("persistence_top1", "persistence"), ("persistence_gap", "persistence gap")],
}


@dataclass
class RunSpec:
    name: str  # row name (run directory name, or random:RECIPE)
    checkpoint: str  # a .pt path, or "random"
    recipe: str | None  # for random weights
    slug: str  # folder of its pictures inside the report folder


def parse_run(spec: str) -> RunSpec:
    """A run directory, a checkpoint file, or ``random:RECIPE``."""
    if spec.startswith("random:"):
        recipe = spec[len("random:"):]
        if not recipe:
            raise ConfigError("random:RECIPE needs a recipe name, e.g. random:supervised_tiny")
        find_recipe(recipe)  # fail now, naming the packaged recipes, not after the other runs
        return RunSpec(spec, "random", recipe, "random_" + Path(recipe).stem)
    checkpoint = resolve_checkpoint(spec)
    p = Path(checkpoint).resolve()
    name = p.parent.parent.name if p.parent.name == "checkpoints" else p.stem
    return RunSpec(name, checkpoint, None, name)


def _unique_slugs(specs: list[RunSpec]) -> None:
    seen: dict[str, int] = {}
    for s in specs:
        n = seen.get(s.slug, 0)
        seen[s.slug] = n + 1
        if n:
            s.slug = f"{s.slug}_{n}"


def parse_evals(evals) -> list[str]:

    names = [x.strip() for x in (evals.split(",") if isinstance(evals, str) else evals) if x.strip()]
    bad = [x for x in names if x not in PROTOCOLS]
    if bad or not names:
        raise ConfigError(f"bad --evals {','.join(bad) or '(none)'} (allowed: {', '.join(sorted(PROTOCOLS))})")
    return names


def _flat_columns(metrics: dict[str, dict], evals: list[str]) -> dict[str, float]:
    """{column title: value} of one run."""
    return {title: metrics[ev].get(key) for ev in evals for key, title in COLUMNS.get(ev, [("top1", ev)])}


def _data_scale(specs: list[RunSpec], results: list[dict], evals: list[str], out_dir: Path) -> Path | None:
    """data_scale.png when the trained runs pretrained on at least two numbers of videos."""
    points = []
    for spec, metrics in zip(specs, results):
        info = pretraining_videos(spec.checkpoint) if spec.checkpoint != "random" else None
        value = next(iter(_flat_columns(metrics, evals).values()))
        if info is not None and value is not None:
            points.append((info[0], info[1], value))
    if len({p[1] for p in points}) < 2:
        return None
    metric = next(iter(_flat_columns(results[0], evals)))
    return plot_data_scale(points, out_dir / "data_scale.png", metric)


def evaluate_run(spec: RunSpec, train: str, test: str, out_dir: Path, evals: list[str], overrides=(),
                 label_column: str | None = None, progress: bool = True) -> tuple[dict, list[tuple[str, str]]]:
    """({protocol: metrics}, [(caption, picture path relative to out_dir)]) of one run."""

    run_dir = out_dir / spec.slug
    # JSON-quoted: the override's value is read as YAML, and a path may hold ': ' or look like a number
    ctx = make_context(spec.checkpoint, train, test, [*overrides, f"eval.out_dir={json.dumps(str(run_dir))}"],
                       label_column, progress, spec.recipe)
    if ctx.multi_label:  # the report's columns and t-SNE colours are single labels
        raise ConfigError(f"vidssl compare reports top-1 columns; {ctx.train.source} is multi-label: "
                          "use vidssl eval linear or finetune (mAP)")
    metrics = {ev: evaluate_context(ev, ctx, spec.name) for ev in evals}
    column = label_column or ctx.cfg.data.label_column
    tsne = save_tsne(ctx, "test", run_dir / "tsne.png", title=f"{spec.name}: test videos by {column}")
    pictures = [(f"t-SNE of the test embeddings, coloured by {column}", tsne.relative_to(out_dir).as_posix())]
    if "picture" in metrics.get("retrieval", {}):
        grid = Path(metrics["retrieval"]["picture"]).resolve().relative_to(out_dir.resolve())
        pictures.append(("nearest training videos of test queries (green: same class)", grid.as_posix()))
    return metrics, pictures


def write_comparison(runs: list[str], train: str, test: str, out_dir: str | Path, evals=DEFAULT_EVALS,
                     progress: bool = True, *, label_column: str | None = None, overrides=(),
                     group: bool = True) -> Path:
    """Evaluate ``runs`` (run directories, checkpoints or ``random:RECIPE``) and write the report.

    Returns the path of ``report.html``; ``report.md`` and ``metrics.json`` lie beside it.
    """
    return compare_runs(runs, train, test, Path(out_dir), evals, progress, label_column, overrides, group)[0]


def compare_runs(runs, train, test, out_dir: Path, evals=DEFAULT_EVALS, progress: bool = True,
                 label_column: str | None = None, overrides=(), group: bool = True) -> tuple[Path, str]:
    """Like :func:`write_comparison`; returns (report.html, the table in Markdown)."""

    if not runs:
        raise ConfigError("compare needs at least one run (a run directory, a checkpoint or random:RECIPE)")
    evals = parse_evals(evals)
    specs = [parse_run(r) for r in runs]  # all specs checked before the first (slow) evaluation
    _unique_slugs(specs)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, pictures = [], []
    for i, spec in enumerate(specs):
        if progress:
            print(f"[compare] {i + 1}/{len(specs)} {spec.name}: {', '.join(evals)}", file=sys.stderr)
        metrics, pics = evaluate_run(spec, train, test, out_dir, evals, overrides, label_column, progress)
        results.append(metrics)
        pictures.append((spec.name, pics))
    columns = list(_flat_columns(results[0], evals))
    scale = _data_scale(specs, results, evals, out_dir)
    if scale:
        pictures.append(("pretraining-data scale", [(f"{columns[0]} against the number of pretraining videos",
                                                     scale.relative_to(out_dir).as_posix())]))
    rows = build_rows([s.name for s in specs], [_flat_columns(m, evals) for m in results], group)
    (out_dir / "metrics.json").write_text(json.dumps(
        {"train": train, "test": test, "label_column": label_column, "evals": evals,
         "runs": [{"name": s.name, "checkpoint": s.checkpoint, "recipe": s.recipe, "metrics": m,
                   "pretraining_videos": (pretraining_videos(s.checkpoint) or (None, None))[1]
                   if s.checkpoint != "random" else 0}
                  for s, m in zip(specs, results)]}, indent=2, default=str) + "\n")
    intro = (f"Frozen-encoder evaluations ({', '.join(evals)}) of {len(specs)} runs; train {train}, test {test}"
             f"{f', labels from column {label_column}' if label_column else ''}. Video-level accuracy unless "
             "marked clip; groups of <name>_seed<k> runs show mean ± standard deviation over seeds.")
    _, page = write_report(out_dir, "vidssl comparison", intro, rows, columns, pictures)
    return page, markdown_table(rows, columns)
