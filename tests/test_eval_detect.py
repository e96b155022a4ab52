"""``vidssl eval detect`` end to end on the built-in detection data (a few videos), with a
random-init tiny model: frozen and fine-tuned encoders, the JSON, and the errors met first."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vidssl.cli import main
from vidssl.data import builtin
from vidssl.data.synthetic import PRESETS

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.test_short_side=32", "data.workers=0",
        "eval.batch_size=8", "eval.detect_batch_size=8", "eval.detect_epochs=2", "eval.detect_warmup_epochs=0",
        "eval.detect_milestones=[1]"]


@pytest.fixture(scope="module")
def detect_data(tmp_path_factory):
    """builtin-detect: with the preset made small (32 videos of 32 px, 32 frames: one keyframe each)."""
    root = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("VIDSSL_DATA", str(root))
    mp.setitem(PRESETS, "detection", dict(PRESETS["detection"], videos=40, size=32, frames=32, seed=1))
    yield {s: builtin.resolve_builtin(f"builtin-detect:{s}") for s in ("train", "val", "test")}
    mp.undo()


def run_detect(tmp_path, capsys, *extra, checkpoint="random", name="detect.json"):
    out = tmp_path / name
    args = ["eval", "detect", "--checkpoint", checkpoint, "--config", "la_tiny", "--train", "builtin-detect:train",
            "--test", "builtin-detect:test", "--json", str(out), "--quiet", *TINY, *extra]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 0, err
    return json.loads(out.read_text())


def test_frozen_random_encoder_reports_frame_map_per_class(detect_data, tmp_path, capsys):
    assert detect_data["train"].endswith("synth-detect/train.csv")
    m = run_detect(tmp_path, capsys)
    assert m["protocol"] == "detect" and m["encoder"] == "frozen" and m["proposals"] == "ground truth"
    assert m["iou_threshold"] == 0.5 and m["input_size"] == 32 and m["map_size"] == "2x2"  # 32 px at stride 16
    scored = [v for v in m["AP"].values() if v is not None]
    assert len(scored) == m["classes_scored"] >= 3 and m["num_classes"] == len(m["AP"])
    assert all(0.0 <= v <= 1.0 for v in scored) and m["mAP"] == pytest.approx(np.mean(scored))
    assert all(m[f"AP_{c}"] == v for c, v in m["AP"].items())
    assert m["train_boxes"] >= m["train_keyframes"] > 0 and m["test_boxes"] >= m["test_keyframes"] > 0
    assert math.isfinite(m["final_loss"]) and m["epochs"] == 2
    # the same command gives the same figures (seeded head, flips and shuffles)
    again = run_detect(tmp_path, capsys, name="again.json")
    assert again["mAP"] == m["mAP"]
    # jittered test proposals are matched at IoU 0.5: the result changes, stays a valid mAP
    jit = run_detect(tmp_path, capsys, "eval.detect_test_jitter=0.3", name="jit.json")
    assert jit["proposals"] == "ground truth, jittered 0.3" and 0.0 <= jit["mAP"] <= 1.0


def test_fine_tuned_encoder_and_explicit_box_files(detect_data, tmp_path, capsys):
    root = Path(detect_data["train"]).parent
    m = run_detect(tmp_path, capsys, "--train-boxes", str(root / "train_boxes.csv"), "--test-boxes",
                   str(root / "test_boxes.csv"), "eval.detect_finetune=true", "eval.detect_epochs=1",
                   "eval.detect_jitter=0.1")
    assert m["encoder"] == "fine-tuned" and 0.0 <= m["mAP"] <= 1.0 and m["epochs"] == 1


def test_errors_are_one_line(detect_data, tmp_path, capsys):
    base = ["eval", "detect", "--checkpoint", "random", "--config", "la_tiny", "--train", "builtin-detect:train",
            "--test", "builtin-detect:test", *TINY]
    assert main([*base, "--test-boxes", str(tmp_path / "nowhere.csv")]) == 2
    assert "nowhere.csv does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad_boxes.csv"
    video = (Path(detect_data["test"]).parent / "test_boxes.csv").read_text().split(",")[0]  # a test video
    bad.write_text(f"{video},1.0,0.1,0.1,0.5,0.5,fly,0\n")
    assert main([*base, "--test-boxes", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert "unknown class names, e.g. fly" in err and len(err.splitlines()) == 1
    assert main(["eval", "knn", "--checkpoint", "random", "--train", "builtin-detect:train", "--test",
                 "builtin-detect:test", "--train-boxes", str(bad)]) == 2
    assert "--train-boxes goes with `vidssl eval detect`" in capsys.readouterr().err
    assert main([*base, "model.backbone=s3dg"]) == 2
    assert "conv5_dilation" in capsys.readouterr().err
