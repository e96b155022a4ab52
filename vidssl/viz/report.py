"""The comparison report (``vidssl compare``): a table of runs x metrics, grouped over seeds,
plus pictures per run, as Markdown and as one self-contained HTML page.

Pure formatting: no torch, no evaluation (that is :mod:`vidssl.viz.compare`).
Runs named ``<name>_seed<k>`` form one row ``<name>`` with the mean and the sample
standard deviation (ddof = 1) over the seeds; any other run is a row of its own.
Images are referenced by paths relative to the report, so the folder can be moved.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

SEEDED = re.compile(r"^(?P<name>.+)_seed(?P<seed>\d+)$")


@dataclass
class Row:
    """One row of the table: ``values[column]`` holds one number per run of the group."""

    name: str
    runs: list[str]
    values: dict[str, list[float]] = field(default_factory=dict)

    def cell(self, column: str) -> str:
        xs = [x for x in self.values.get(column, []) if x is not None and math.isfinite(x)]
        if not xs:
            return "–"
        mean, std = mean_std(xs)
        return f"{mean:.3f}" if len(xs) == 1 else f"{mean:.3f} ± {std:.3f}"


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def group_runs(names: list[str], group: bool = True) -> list[tuple[str, list[int]]]:
    """[(row name, indices of its runs)] in order of first appearance; ``name_seedK`` runs share
    the row ``name`` when ``group``, every other run (and every run without ``group``) is its own row."""
    rows: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        m = SEEDED.match(name) if group else None
        key = m.group("name") if m else name
        if not m and key in rows:  # two runs of the same name that are not seeds: keep both rows
            key = f"{name} ({i})"
        rows.setdefault(key, []).append(i)
    return list(rows.items())


def build_rows(names: list[str], metrics: list[dict[str, float]], group: bool = True) -> list[Row]:
    """Rows of the table from one flat ``{column: value}`` dict per run (run order kept)."""
    rows = []
    for row_name, idx in group_runs(names, group):
        row = Row(row_name, [names[i] for i in idx])
        for i in idx:
            for col, v in metrics[i].items():
                row.values.setdefault(col, []).append(v)
        if len(idx) > 1:
            row.name = f"{row_name} ({len(idx)} seeds)"
        rows.append(row)
    return rows


def markdown_table(rows: list[Row], columns: list[str]) -> str:
    lines = ["| run | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += ["| " + r.name + " | " + " | ".join(r.cell(c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(title: str, intro: str, rows: list[Row], columns: list[str],
                    pictures: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """``pictures``: [(run name, [(caption, relative path)])]."""
    parts = [f"# {title}", "", intro, "", markdown_table(rows, columns), ""]
    for run, pics in pictures:
        parts += [f"## {run}", ""]
        parts += [f"![{cap}]({path})" for cap, path in pics]
        parts.append("")
    return "\n".join(parts)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:72em}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}
figure{display:inline-block;margin:.5em}figcaption{font-size:.85em;color:#444}img{max-width:34em}"""


def render_html(title: str, intro: str, rows: list[Row], columns: list[str],
                pictures: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """One HTML page, CSS inline, nothing fetched; images by relative path."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr><td>" + e(r.name) + "</td>" + "".join(f'<td class="n">{e(r.cell(c))}</td>' for c in columns)
                   + "</tr>" for r in rows)
    figs = []
    for run, pics in pictures:
        figs.append(f"<h2>{e(run)}</h2>")
        figs += [f'<figure><img src="{e(path)}" alt="{e(cap)}"><figcaption>{e(cap)}</figcaption></figure>'
                 for cap, path in pics]
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1><p>{e(intro)}</p>"
            f"<table><tr><th>run</th>{head}</tr>{body}</table>{''.join(figs)}</body></html>\n")


def write_report(out_dir: Path, title: str, intro: str, rows: list[Row], columns: list[str],
                 pictures: list[tuple[str, list[tuple[str, str]]]]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(render_markdown(title, intro, rows, columns, pictures))
    page.write_text(render_html(title, intro, rows, columns, pictures))
    return md, page
