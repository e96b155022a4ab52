"""`vidssl demo` end to end on a few tiny videos: every stage runs and writes its files."""
import json
from pathlib import Path

from vidssl.cli import main

TINY = ["model.width=4", "data.num_frames=4", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "data.test_clips=2",
        "eval.batch_size=8", "eval.linear_epochs=5"]


def test_demo_writes_table_plots_and_comparison_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))  # features cached once, shared by the evals
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--videos", "32", "--epochs", "1", "--only", "supervised_tiny",
                 "--set", *TINY])
    assert code == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"random init (3D R-18)", "supervised 3D R-18"}
    for row in results.values():
        assert set(row) == {"motion linear", "motion kNN", "appearance linear"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    for name in ("report.md", "accuracy.png", "loss.png", "compare/report.md", "compare/report.html"):
        assert (out / name).is_file(), name
    html = (out / "compare" / "report.html").read_text()
    assert "random:supervised_tiny" in html and "<table" in html
    assert "| supervised 3D R-18" in capsys.readouterr().out


def test_demo_la_rows_come_from_the_la_idt_workflow(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--videos", "32", "--epochs", "1", "--only", "la_idt_tiny",
                 "--set", *TINY, "idt.max_tracks=100", "analysis.montage=false"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == {"Video LA (3D R-18)", "Video LA + IDT prior (3D R-18)"}
    # one workflow run gave both rows: plain LA and the joint-tuned LA + IDT encoder
    state = json.loads((out / "la_idt" / "workflow.json").read_text())
    assert {s: state["stages"][s]["status"] for s in ("extract", "ir", "la", "la_idt", "la_joint")} == \
        dict.fromkeys(("extract", "ir", "la", "la_idt", "la_joint"), "done")
    assert results["runs"]["Video LA + IDT prior (3D R-18)"].endswith("la_joint")
    assert (out / "la_idt" / "clusters.json").is_file()


def test_demo_cpc_rows_read_the_mean_over_segments(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--videos", "32", "--epochs", "1", "--only", "cpc_tiny",
                 "--set", *TINY, "model.options.frames=4", "data.hop=2", "data.views=3", "method.segments=3"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == {"random init (stacked-frame 2D R-18)", "video CPC (stacked-frame 2D R-18)"}
    assert all(0.0 <= v <= 1.0 for row in results["results"].values() for v in row.values())
    run = results["runs"]["video CPC (stacked-frame 2D R-18)"]
    rows = [json.loads(r) for r in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    assert any("acc_k2" in r for r in rows)  # a CPC run, predicting 2 steps ahead
