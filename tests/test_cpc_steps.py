"""``vidssl viz cpc-steps``: CPC's prediction accuracy against k, read from metrics.jsonl."""
from __future__ import annotations

import json

import pytest

from vidssl.cli import main
from vidssl.errors import ConfigError
from vidssl.viz.cpc_steps import step_accuracy


def write_run(path, rows):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{torn")
    return path


def test_mean_over_the_last_rows_per_step(tmp_path):
    rows = [{"step": s, "loss": 1.0, "acc_k1": 0.1 * s, "acc_k2": 0.05 * s} for s in range(1, 11)]
    rows.insert(3, {"step": 99, "val_top1": 0.5})  # rows without acc_k are ignored
    run = write_run(tmp_path / "r", rows)
    assert step_accuracy(run, tail=0.2) == pytest.approx({1: 0.95, 2: 0.475})
    assert step_accuracy(run, tail=0.01) == pytest.approx({1: 1.0, 2: 0.5})  # at least one row
    assert step_accuracy(run, tail=1.0) == pytest.approx({1: 0.55, 2: 0.275})


def test_not_a_cpc_run_is_one_clear_error(tmp_path):
    run = write_run(tmp_path / "r", [{"step": 1, "loss": 2.0}])
    with pytest.raises(ConfigError, match="not a video CPC run"):
        step_accuracy(run)
    with pytest.raises(ConfigError, match="no metrics.jsonl"):
        step_accuracy(tmp_path / "missing")


def test_command_prints_the_table_and_writes_the_picture(tmp_path, capsys):
    a = write_run(tmp_path / "a", [{"step": 1, "acc_k1": 0.5, "acc_k2": 0.25, "acc_k3": 0.125}])
    b = write_run(tmp_path / "b", [{"step": 1, "acc_k1": 0.75}])
    out = tmp_path / "steps.png"
    assert main(["viz", "cpc-steps", str(a), str(b), "--names", "hard", "easy", "--out", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == ["run", "k=1", "k=2", "k=3"]
    assert text[1].split() == ["hard", "0.500", "0.250", "0.125"] and text[2].split() == ["easy", "0.750", "-", "-"]
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    assert main(["viz", "cpc-steps", str(a), "--names", "x", "y"]) == 2
