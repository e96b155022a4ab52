"""The command line end to end on a tiny built-in dataset: render, check, train,
resume, evaluate (JSON), and the errors a user meets first."""
import json

import pytest

from vidssl.cli import main

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "data.test_clips=2",
        "train.epochs=1", "train.progress=false", "eval.batch_size=8", "eval.linear_epochs=5"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    # 32 videos: the test split then holds every class (the evals check that both splits agree)
    assert main(["data", "synth", str(out), "--videos", "32", "--seed", "3"]) == 0
    return out


def test_check_videos_reports_bad_files(tiny_data, tmp_path, capsys):
    assert main(["check-videos", str(tiny_data / "train.csv")]) == 0
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    (tmp_path / "m.csv").write_text(f"path,label\n{bad},0\n" + "".join(
        f"{p},0\n" for p in sorted((tiny_data / "videos").glob("*.mp4"))[:2]))
    capsys.readouterr()
    assert main(["check-videos", str(tmp_path / "m.csv")]) == 1
    out = capsys.readouterr().out
    assert "bad.mp4" in out and "1 bad" in out


def test_train_supervised_then_eval_json(tiny_data, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train-supervised", "supervised_tiny", f"data.train={tiny_data / 'train.csv'}",
                 "--run-dir", str(run), *TINY])
    assert code == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert (run / "metrics.jsonl").is_file()
    for protocol in ("knn", "linear"):
        out_json = tmp_path / f"{protocol}.json"
        code = main(["eval", protocol, "--checkpoint", str(run), "--train", str(tiny_data / "train.csv"),
                     "--test", str(tiny_data / "test.csv"), "--json", str(out_json), "--quiet",
                     "eval.cache=false", "eval.batch_size=8", "eval.linear_epochs=5"])
        assert code == 0
        metrics = json.loads(out_json.read_text())
        assert 0.0 <= metrics["top1"] <= 1.0 and metrics["views"] >= 1
        assert metrics["num_test"] == sum(1 for _ in open(tiny_data / "test.csv")) - 1
    out_json = tmp_path / "persistence.json"  # label-free: clips of one video vs clips of others
    assert main(["eval", "persistence", "--checkpoint", str(run), "--train", str(tiny_data / "train.csv"),
                 "--test", str(tiny_data / "test.csv"), "--json", str(out_json), "--quiet", "eval.cache=false",
                 "data.test_clips=3"]) == 0
    metrics = json.loads(out_json.read_text())
    assert metrics["clips"] == 3 and 0.0 <= metrics["persistence_top1"] <= 1.0
    assert metrics["persistence_chance"] == pytest.approx(2 / (3 * metrics["num_test"] - 1))


def test_empty_manifest_fails_at_start(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("path,label\n")
    code = main(["pretrain", "supervised_tiny", f"data.train={empty}", "--run-dir", str(tmp_path / "r"), *TINY])
    assert code != 0
    assert "empty" in capsys.readouterr().err.lower()


def test_missing_files_fail_at_start_naming_them(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("path,label\nnowhere/a.mp4,0\nnowhere/b.mp4,1\n")
    code = main(["pretrain", "supervised_tiny", f"data.train={m}", "--run-dir", str(tmp_path / "r"), *TINY])
    assert code != 0
    assert "a.mp4" in capsys.readouterr().err


def test_eval_with_a_missing_manifest_is_one_line_not_a_traceback(tmp_path, capsys):
    code = main(["eval", "knn", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(tmp_path / "nowhere.csv"), "--test", str(tmp_path / "nowhere.csv")])
    assert code == 2  # a path that is not there: a usage error
    err = capsys.readouterr().err
    assert "nowhere.csv does not exist" in err and "Traceback" not in err
