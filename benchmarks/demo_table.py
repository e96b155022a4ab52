"""Write the table of a finished ``vidssl demo`` into docs/results.md (section ``demo``).

Reads ``OUT/results.json`` of ``vidssl demo --out OUT`` (default ``runs/demo``) and writes
the table the demo printed (:func:`vidssl.demo.format_table`) with the command and the
date under it. Reads JSON only: nothing is trained or evaluated.

    vidssl demo && python benchmarks/demo_table.py              # runs/demo
    python benchmarks/demo_table.py runs/demo_small --no-doc    # print the table only
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidssl.demo import format_table


def main(argv: list[str] | None = None) -> int:
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/demo_table.py`
        from results_doc import add_doc_argument, provenance, write_section
    except ModuleNotFoundError:  # python -m benchmarks.demo_table
        from benchmarks.results_doc import add_doc_argument, provenance, write_section

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="runs/demo", help="the demo's --out folder (default runs/demo)")
    add_doc_argument(ap)
    args = ap.parse_args(argv)
    path = Path(args.out) / "results.json"
    if not path.is_file():
        ap.error(f"{path} not found: run `vidssl demo --out {args.out}` first")
    data = json.loads(path.read_text())
    table = format_table(data["results"])
    print(table)
    if args.doc:
        note = f"the table of `vidssl demo` in {path}"
        if data.get("seconds") is not None:
            note += f", which took {data['seconds'] / 60:.1f} min"
        name = args.doc_section or "demo"
        written = write_section(name, table + "\n\n" + provenance(note=note), args.doc_path)
        print(f"wrote section {name} of {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
