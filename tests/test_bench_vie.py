"""benchmarks/bench_vie.py without training: the Input-Single overrides it derives from the recipes,
and the Table 1 layout built from whatever runs are stored."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidssl.config import load_config, to_dict

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))  # undone after the test
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_vie

    return bench_vie


@pytest.mark.parametrize("family", ["3dresnet", "trn", "slow", "slowfast"])
def test_input_single_overrides_turn_the_single_config_into_the_control(bench, family):
    ov = bench.recipe_overrides(f"vie_input_single_{family}_tiny", "vie_single_la_tiny")
    assert ov and all(o.startswith("data.") for o in ov)
    got = load_config("vie_single_la_tiny", ov)
    assert to_dict(got.data) == to_dict(load_config(f"vie_input_single_{family}_tiny").data)
    assert to_dict(got.model) == to_dict(load_config("vie_single_la_tiny").model)


def test_ir_warm_up_keeps_the_papers_share(bench):
    assert bench.training_overrides(20) == ["train.epochs=20", "method.ir_warmup_epochs=4"]
    assert bench.training_overrides(200)[1] == "method.ir_warmup_epochs=40"


def rec(motion: float, appearance: float) -> dict:
    return {"figures": {"motion": {x: motion for x in ("conv3", "conv4", "conv5")},
                        "appearance": {x: appearance for x in ("conv3", "conv4", "conv5")}}}


def test_table_rows_and_claims_come_from_the_stored_runs(bench):
    records = {f"single_e20_s{s}": rec(0.3, 0.9) for s in range(3)}
    records.update({f"slow_e20_s{s}": rec(0.4 + 0.01 * s, 0.7) for s in range(3)})
    records["input_single_slow_e20_s0"] = rec(0.35, 0.9)
    records["static_single_e20_s0"] = {"figures": {"static": {"conv3": 0.5, "conv4": 0.6, "conv5": 0.7}}}
    records["slow_e5_s0"] = rec(0.0, 0.0)  # another epoch count: not in this table
    text = bench.table(records, 20)
    lines = text.splitlines()
    single = next(line for line in lines if line.startswith("| VIE-Single |"))
    assert single.count("0.300 ± 0.000 (3)") == 3 and single.count("0.900 ± 0.000 (3)") == 3
    assert any(line.startswith("| Slow-Input-Single | 0.350 (1)") for line in lines)
    assert "| VIE-Single | 0.500 (1) | 0.600 (1) | 0.700 (1) |" in text
    claim = next(line for line in lines if line.startswith("| VIE-Slow > VIE-Single (motion, conv5)"))
    assert claim.endswith("| holds |") and "+0.100 +0.110 +0.120" in claim
    assert not any(line.startswith("| VIE-TRN |") for line in lines)  # nothing stored: no row
