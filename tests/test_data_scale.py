"""Pretraining-data scale: ``data.subset`` (a seeded, nested part of the training manifest)
and ``vidssl compare``'s accuracy-against-pretraining-videos picture."""
from __future__ import annotations

import json

import pytest
import yaml

from vidssl.cli import main
from vidssl.config import load_config
from vidssl.data.manifests import Manifest, load_manifest
from vidssl.errors import ConfigError, ManifestError
from vidssl.viz.data_scale import curves

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "data.test_clips=1",
        "eval.batch_size=8", "train.epochs=1", "optim.warmup_epochs=0", "train.progress=false"]


def manifest(n=20):
    return Manifest([f"/v/{i}.mp4" for i in range(n)], [i % 4 for i in range(n)], [], {"scene": [str(i) for i in
                                                                                          range(n)]}, "m.csv")


def test_subsets_have_the_asked_size_keep_order_and_are_nested():
    m = manifest()
    quarter, half = m.random_subset(0.25, seed=3), m.random_subset(0.5, seed=3)
    assert (len(quarter), len(half), len(m.random_subset(7, seed=3))) == (5, 10, 7)
    assert set(quarter.paths) <= set(half.paths) <= set(m.paths)
    for s in (quarter, half):
        assert s.paths == sorted(s.paths, key=m.paths.index)  # manifest order
        assert s.labels == [m.labels[m.paths.index(p)] for p in s.paths]
        assert s.columns["scene"] == [p.split("/")[-1][:-4] for p in s.paths]
    assert m.random_subset(0.5, seed=4).paths != half.paths
    assert m.random_subset(0.5, seed=3).paths == half.paths
    with pytest.raises(ManifestError, match="30 of its 20 videos"):
        m.random_subset(30)


@pytest.mark.parametrize("bad", [1, 1.0, 1.5, 0, -3, "half"])
def test_bad_subsets_are_refused_in_one_line(bad):
    with pytest.raises(ConfigError, match="data.subset"):
        load_config("ir_tiny", [f"data.subset={json.dumps(bad)}"])


def test_good_subsets_keep_their_type():
    assert load_config("ir_tiny", ["data.subset=0.25"]).data.subset == 0.25
    assert load_config("ir_tiny", ["data.subset=300"]).data.subset == 300


def test_curves_group_runs_by_method_and_number_of_videos():
    pts = [("ir", 10, 0.2), ("ir", 10, 0.4), ("ir", 20, 0.5), ("la", 20, 0.6)]
    got = curves(pts)
    assert got["ir"][0][:2] == (10, pytest.approx(0.3)) and got["ir"][0][2] == pytest.approx(0.1414, abs=1e-3)
    assert got["ir"][1] == (20, 0.5, 0.0, 1) and got["la"] == [(20, 0.6, 0.0, 1)]


def test_pretraining_on_a_subset_and_the_data_scale_picture(tmp_path, synth_dir, monkeypatch, capsys):
    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))
    train, test = str(synth_dir / "train.csv"), str(synth_dir / "test.csv")
    n = len(load_manifest(train))
    runs = []
    for subset in ("0.5", "null"):
        run = tmp_path / f"ir_{subset}"
        assert main(["pretrain", "ir_tiny", f"data.train={train}", f"data.subset={subset}", *TINY,
                     "--run-dir", str(run)]) == 0
        runs.append(str(run))
    summaries = [json.loads((tmp_path / f"ir_{s}" / "summary.json").read_text()) for s in ("0.5", "null")]
    assert [s["train_videos"] for s in summaries] == [round(0.5 * n), n]
    assert yaml.safe_load((tmp_path / "ir_0.5" / "config.yaml").read_text())["data"]["subset"] == 0.5
    out = tmp_path / "cmp"
    assert main(["compare", *runs, "random:ir_tiny", "--train", train, "--test", test, "--out", str(out),
                 "--evals", "knn", *TINY]) == 0
    meta = json.loads((out / "metrics.json").read_text())
    assert [r["pretraining_videos"] for r in meta["runs"]] == [round(0.5 * n), n, 0]
    assert (out / "data_scale.png").stat().st_size > 1000
    assert "data_scale.png" in (out / "report.md").read_text()
