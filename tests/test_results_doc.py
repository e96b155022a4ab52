"""benchmarks/results_doc.py: the sections of docs/results.md that the benchmark scripts write."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture()
def rd(monkeypatch):
    """The module, imported as the scripts import it (benchmarks/ on sys.path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import results_doc

    return results_doc


def section(name: str, body: str) -> str:
    return f"<!-- results:{name}:begin -->\n{body}\n<!-- results:{name}:end -->"


def test_replace_keeps_the_text_around_byte_identical(rd, tmp_path):
    before = "# Results\r\n\nprose with trailing blanks  \n\n"  # odd line ends on purpose
    after = "\n\nmore prose, no final newline"
    doc = tmp_path / "results.md"
    doc.write_bytes((before + section("rho", "| a |\n|---|\n| 1 |") + after).encode())
    assert rd.write_section("rho", "| a |\n|---|\n| 2 |\n\nCommand: `x`.", doc) == doc
    text = doc.read_bytes().decode()
    assert text == before + section("rho", "| a |\n|---|\n| 2 |\n\nCommand: `x`.") + after
    # writing the same again changes nothing; no temporary file is left behind
    rd.write_section("rho", "| a |\n|---|\n| 2 |\n\nCommand: `x`.", doc)
    assert doc.read_bytes().decode() == text
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_missing_section_is_appended_with_its_markers(rd, tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nprose")
    rd.write_section("demo", "| t |\n|---|\n| 0.5 |\n", doc)
    assert doc.read_text() == "# Results\n\nprose\n\n" + section("demo", "| t |\n|---|\n| 0.5 |") + "\n"
    rd.write_section("demo", "| t |\n|---|\n| 0.6 |", doc)  # now present: replaced in place
    assert doc.read_text() == "# Results\n\nprose\n\n" + section("demo", "| t |\n|---|\n| 0.6 |") + "\n"
    new = tmp_path / "new.md"  # a file that does not exist yet
    rd.write_section("x", "table", new)
    assert new.read_text() == section("x", "table") + "\n"


def test_two_sections_do_not_interfere(rd, tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("top\n" + section("a", "A0") + "\nmiddle\n" + section("a/seeds=0,1", "B0") + "\nend\n")
    rd.write_section("a", "A1", doc)
    rd.write_section("a/seeds=0,1", "B1\nB1", doc)
    assert doc.read_text() == "top\n" + section("a", "A1") + "\nmiddle\n" + section("a/seeds=0,1", "B1\nB1") + "\nend\n"


@pytest.mark.parametrize("text, match", [
    ("<!-- results:a:end -->\nx\n<!-- results:a:begin -->\n", "before its begin"),
    ("<!-- results:a:begin -->\nx\n<!-- results:a:end -->\n<!-- results:a:begin -->\ny\n<!-- results:a:end -->\n",
     "2 begin and 2 end"),
    ("<!-- results:a:begin -->\nx\n", "1 begin and 0 end"),
    ("x\n<!-- results:a:end -->\n", "0 begin and 1 end"),
    ("<!-- results:a:begin -->\n<!-- results:b:begin -->\n<!-- results:b:end -->\n<!-- results:a:end -->\n",
     "encloses another"),
])
def test_bad_markers_are_a_clear_error_and_leave_the_file_alone(rd, tmp_path, text, match):
    doc = tmp_path / "results.md"
    doc.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        rd.write_section("a", "new", doc)
    assert "'a'" in str(err.value)
    assert doc.read_text() == text


def test_bad_names_and_markers_in_the_markdown(rd, tmp_path):
    for name in ("", "a b", "a:b", "a-->"):
        with pytest.raises(ValueError, match="section name"):
            rd.write_section(name, "x", tmp_path / "r.md")
    with pytest.raises(ValueError, match="marker"):
        rd.write_section("a", "<!-- results:b:begin -->", tmp_path / "r.md")
    assert not (tmp_path / "r.md").exists()


def test_doc_arguments_and_section_names(rd):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--camera", type=float, default=0.0)
    ap.add_argument("overrides", nargs="*")
    rd.add_doc_argument(ap)
    args = ap.parse_args([])
    assert args.doc is True and Path(args.doc_path) == rd.DEFAULT_PATH
    assert rd.section_name("rho", args, ap, ["seeds", "epochs", "camera", "overrides"]) == "rho"
    args = ap.parse_args(["--no-doc", "--seeds", "0,1", "--camera", "0.75", "data.modality=rgb"])
    assert args.doc is False
    assert (rd.section_name("rho", args, ap, ["seeds", "epochs", "camera", "overrides"])
            == "rho/seeds=0,1/camera=0.75/overrides=data.modality=rgb")
    args = ap.parse_args(["--doc-section", "mine"])
    assert rd.section_name("rho", args, ap, ["seeds"]) == "mine"


def test_provenance_names_the_command_and_the_date(rd, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_x.py", "--seeds", "0,1"])
    line = rd.provenance(12.34, note="n")
    assert line.startswith("Command: `python benchmarks/bench_x.py --seeds 0,1` (20")
    assert line.endswith(", 12.3 min; n).")


def test_demo_table_has_the_demo_format(rd, tmp_path):
    import demo_table

    results = {"random init (3D R-18)": {"motion linear": 0.2888, "motion kNN": 0.2, "appearance linear": 0.2},
               "rho-SimCLR rho=2 (3D R-18)": {"motion linear": 0.5333, "motion kNN": 0.3778,
                                              "appearance linear": 0.2333}}
    from vidssl import demo

    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "results.json").write_text(json.dumps({"results": results, "runs": {}, "seconds": 780.0}))
    doc = tmp_path / "results.md"
    assert demo_table.main([str(tmp_path / "demo"), "--doc-path", str(doc)]) == 0
    text = doc.read_text()
    assert demo.format_table(results) in text and "took 13.0 min" in text
