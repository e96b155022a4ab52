"""Write the benchmark scripts' tables into docs/results.md, so that no figure is copied by hand.

docs/results.md is hand-written prose around tables that the scripts write themselves.
Each table lives between two markers (HTML comments, invisible once rendered)::

    <!-- results:NAME:begin -->
    ... written by a script ...
    <!-- results:NAME:end -->

``write_section(NAME, markdown)`` replaces what lies between the two markers of NAME and
leaves every other byte of the file as it was; a section not yet in the file is appended
at its end, markers included (move it, markers and all, to where it belongs: the next run
replaces it there). The file is written atomically: a temporary file in the same folder,
then a rename (:func:`vidssl.fileio.atomic_write_text`). Markers out of order, duplicated, or
enclosing another section's markers stop with a ValueError naming the section.

A script adds ``--doc/--no-doc`` (write the section, the default / only print),
``--doc-path`` and ``--doc-section`` with :func:`add_doc_argument`, names its section with
:func:`section_name` (the script's name and the options that change what it measures, so
that runs of different settings keep their own sections) and ends its ``main`` with::

    if args.doc:
        write_section(section_name("ir_la", args, ap, ["epochs"]), table + "\\n\\n" + provenance(), args.doc_path)

``python benchmarks/X.py`` finds it on ``sys.path[0]``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import sys
from pathlib import Path

from vidssl.fileio import atomic_write_text

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "results.md"
_NAME = re.compile(r"[^\s:<>]+")  # no blanks, no ':' (the marker's separator), no '<' or '>'
_ANY_MARKER = "<!-- results:"


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of section ``name``."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad results section name {name!r}: no blanks, ':', '<' or '>'")
    return f"<!-- results:{name}:begin -->", f"<!-- results:{name}:end -->"


def write_section(name: str, markdown: str, path: str | os.PathLike = DEFAULT_PATH) -> Path:
    """Put ``markdown`` between the markers of section ``name`` in ``path``; returns the path."""
    path = Path(path)
    begin, end = markers(name)
    body = "\n" + markdown.strip("\n") + "\n"
    if _ANY_MARKER in body:
        raise ValueError(f"section {name!r}: the markdown itself holds a results marker")
    text = ""
    if path.exists():
        with open(path, encoding="utf-8", newline="") as f:  # newline="": keep the file's line ends
            text = f.read()
    n_begin, n_end = text.count(begin), text.count(end)
    if n_begin == n_end == 0:  # a new section: at the end, after a blank line
        blank = "\n" * max(0, 2 - (len(text) - len(text.rstrip("\n")))) if text else ""
        new = text + blank + begin + body + end + "\n"
    elif n_begin == n_end == 1 and text.index(begin) < text.index(end):
        i, j = text.index(begin) + len(begin), text.index(end)
        if _ANY_MARKER in text[i:j]:
            raise ValueError(f"{path}: section {name!r} encloses another section's marker")
        new = text[:i] + body + text[j:]
    else:
        what = "its end marker comes before its begin marker" if n_begin == n_end == 1 else (
            f"{n_begin} begin and {n_end} end markers (need one of each, or none)")
        raise ValueError(f"{path}: results section {name!r}: {what}")
    atomic_write_text(path, new)
    return path


def add_doc_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--doc/--no-doc`` (default: write), ``--doc-path`` and ``--doc-section``."""
    parser.add_argument("--doc", action=argparse.BooleanOptionalAction, default=True,
                        help="write the result tables into their section of docs/results.md (default); "
                             "--no-doc only prints them")
    parser.add_argument("--doc-path", default=str(DEFAULT_PATH),  # a str: vars(args) stays JSON-serialisable
                        help=f"the file to write (default {DEFAULT_PATH})")
    parser.add_argument("--doc-section", default=None,
                        help="section name (default: the script's name and its options that change the results)")
    return parser


def section_name(base: str, args: argparse.Namespace, parser: argparse.ArgumentParser, keys: list[str]) -> str:
    """``--doc-section`` if given, else ``base`` and ``/key=value`` for each of ``keys`` not at its default.

    E.g. ``rho_methods/methods=simclr,byol/seeds=0,1,2,3``: a run with other settings writes
    its own section instead of replacing the table of the default run.
    """
    if getattr(args, "doc_section", None):
        return args.doc_section
    parts = [base]
    for key in keys:
        value, default = getattr(args, key), parser.get_default(key)
        if value == default or (value in (None, []) and default in (None, [])):  # nargs="*": [] for None
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        parts.append(f"{key}={value}")
    return re.sub(r"[\s:<>]+", "_", "/".join(parts))


def provenance(minutes: float | None = None, note: str = "") -> str:
    """The line under a table: the command that produced it (``sys.argv``), the date, the time taken."""
    when = datetime.date.today().isoformat()
    extra = (f", {minutes:.1f} min" if minutes is not None else "") + (f"; {note}" if note else "")
    return f"Command: `python {shlex.join(sys.argv)}` ({when}{extra})."
