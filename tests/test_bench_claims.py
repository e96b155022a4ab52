"""benchmarks/claims_store.py and the tables of bench_claims.py: the per-run store, paired
differences, the verdict rule, and tables built from whatever runs are stored."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture()
def mods(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_claims
    import claims_store

    return claims_store, bench_claims


def test_store_round_trips_and_lists_runs(mods, tmp_path):
    cs, _ = mods
    store = cs.RunStore(tmp_path / "claims")
    assert store.get("x_s0") is None and store.all() == {}
    store.put("x_s0", {"figures": {"motion": 0.5}, "minutes": 1.0})
    (tmp_path / "claims" / "broken.json").write_text("{not json")
    assert store.get("x_s0")["figures"]["motion"] == 0.5 and store.get("x_s0")["id"] == "x_s0"
    assert list(store.all()) == ["x_s0"]  # an unreadable file is not a run


@pytest.mark.parametrize("diffs,expected", [
    ({0: 0.1, 1: 0.02, 2: 0.001}, "holds"),
    ({0: -0.1, 1: 0.02, 2: 0.01}, "does not hold"),  # mean -0.023
    ({0: 0.0, 1: 0.0, 2: 0.0}, "does not hold"),
    ({0: 0.1, 1: -0.02, 2: 0.01}, "inconclusive (sign changes across seeds)"),
    ({0: 0.3, 1: 0.2}, "inconclusive (2 of 3 seeds)"),
    ({}, "inconclusive (0 of 3 seeds)"),
])
def test_verdict_rule(mods, diffs, expected):
    cs, _ = mods
    assert cs.verdict(diffs) == expected


def test_paired_differences_use_common_seeds_only(mods):
    cs, _ = mods
    assert cs.paired({0: 0.5, 1: 0.6, 3: 0.9}, {0: 0.4, 1: 0.7, 2: 0.1}) == pytest.approx({0: 0.1, 1: -0.1})
    m, s = cs.mean_std([0.2, 0.4])
    assert m == pytest.approx(0.3) and s == pytest.approx(math.sqrt(0.02))
    assert cs.cell([]) == "–" and cs.cell([0.25]) == "0.250 (1)" and cs.cell([0.2, 0.4]) == "0.300 ± 0.141 (2)"


def _workflow(la, la_joint, ir=0.3, la_idt=0.35, nmi=None):
    stage = {"motion": 0, "appearance": 0.2, "motion_val": 0}
    figs = {"ir": {**stage, "motion": ir}, "la": {**stage, "motion": la}, "la_idt": {**stage, "motion": la_idt},
            "la_joint": {**stage, "motion": la_joint}}
    return {"figures": figs, "clusters_nmi": nmi or {"la": {"label": 0.1, "appearance": 0.5},
                                                    "idt": {"label": 0.3, "appearance": 0.1}}}


def test_tables_are_built_from_the_stored_runs(mods):
    _, bc = mods
    records = {f"la_idt_diff_s{s}": _workflow(la=0.40 + 0.01 * s, la_joint=0.45 + 0.01 * s) for s in range(3)}
    records.update({f"random_diff_s{s}": {"figures": {"motion": 0.2, "appearance": 0.5, "motion_val": 0.2},
                                          "minutes": 0.5} for s in range(3)})
    rows = {claim: (a, b) for claim, _, a, b in bc.claim_rows(records)}
    a, b = rows["LA + IDT > LA, motion, frame differences"]
    assert a == pytest.approx({0: 0.45, 1: 0.46, 2: 0.47}) and b == pytest.approx({0: 0.40, 1: 0.41, 2: 0.42})
    table = bc.claims_table(records)
    line = next(ln for ln in table.splitlines() if ln.startswith("| LA + IDT > LA, motion, frame differences"))
    assert "+0.050 +0.050 +0.050" in line and line.endswith("| holds |")
    assert "| LA + IDT > LA, motion, RGB | Table 1: 72.8 vs 71.4 (UCF101) | – | – | – | not run yet |" in table
    scene = next(ln for ln in table.splitlines() if ln.startswith("| plain LA clusters follow the scene")
                 and "frame differences" in ln)
    assert scene.endswith("| holds |")
    calib = bc.calibration_table(records)
    assert "| random-init 3D R-18 | frame differences | 0.200 ± 0.000 (3) | 0.500 ± 0.000 (3)" in calib


def test_run_ids_parse_their_seed(mods):
    _, bc = mods
    records = {"sup3d_rgb_s0": {"figures": {"motion": 0.1}}, "sup3d_rgb_s12": {"figures": {"motion": 0.3}},
               "sup3d_rgb_camera_s1": {"figures": {"motion": 0.9}}, "sup3d_rgb_s1": {"figures": {}}}
    assert bc.by_seed(records, "sup3d_rgb", lambda r: r["figures"]["motion"]) == {0: 0.1, 12: 0.3}


def test_close_statistics_against_a_loop(monkeypatch):
    import numpy as np
    import torch

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_la_background import close_statistics

    g = torch.Generator().manual_seed(0)
    n, k = 30, 7
    bank = torch.nn.functional.normalize(torch.randn(n, 5, generator=g), dim=1)
    clusters = torch.randint(0, 4, (2, n), generator=g)
    scene, motion = np.arange(n) % 3, np.arange(n) % 5
    got = close_statistics(bank, clusters, scene, motion, k)
    close = other = same = 0
    for i in range(n):
        sims = [(float(bank[i] @ bank[j]), j) for j in range(n) if j != i]
        for _, j in sorted(sims, reverse=True)[:k]:
            if any(clusters[c, i] == clusters[c, j] for c in range(2)):
                close += 1
                other += scene[j] != scene[i]
                same += motion[j] == motion[i]
    assert got["close_share"] == pytest.approx(close / (n * k))
    assert got["close_per_video"] == pytest.approx(close / n)
    assert got["other_scene"] == pytest.approx(other / close) and got["same_motion"] == pytest.approx(same / close)
