"""The command line fails early and clearly: every bad invocation is one line on stderr,
``vidssl: error: ...``, with exit code 2 for usage and config errors and 1 for data that
cannot be used; nothing is trained, rendered or created first. Also ``--version``,
``recipes``, ``config show`` and ``eval ... --json -``."""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from vidssl.cli import main
from vidssl.config import packaged_recipes
from vidssl.errors import ConfigError

PREFIX = "vidssl: error: "
TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.batch_size=4", "data.workers=0", "data.test_clips=2", "train.epochs=1", "train.progress=false",
        "eval.batch_size=8", "eval.cache=false"]
EVAL = ["--checkpoint", "random", "--config", "supervised_tiny"]


@pytest.fixture
def files(tmp_path, synth_dir):
    """Paths the bad invocations name: {tmp}, {synth}, a corrupt file, foreign pickles, a manifest
    with a missing video."""
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    (tmp_path / "junk.npy").write_bytes(b"this is not an array")
    with open(tmp_path / "foreign.pt", "wb") as f:
        pickle.dump(argparse.Namespace(x=1), f)  # a pickle of some other object
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")  # a torch file, not a vidssl checkpoint
    video = sorted((synth_dir / "videos").glob("*.mp4"))[0]
    (tmp_path / "missing_video.csv").write_text(f"path,label\n{video},0\n{tmp_path / 'gone.mp4'},1\n")
    return {"tmp": str(tmp_path), "synth": str(synth_dir)}


RUN = ["--run-dir", "{tmp}/run"]
TRAIN = "data.train={synth}/train.csv"

# (invocation, exit code, part of the message); {tmp} and {synth} are filled in
BAD = [
    # training: data.train missing (a recipe without one) or empty
    (["pretrain", "supervised_r3d18", *RUN], 2, "'data.train' is empty"),
    (["pretrain", "supervised_tiny", "data.train=", *RUN], 2, "'data.train' is empty"),
    (["train-supervised", "ir_r3d18", *RUN], 2, "'data.train' is empty"),
    # recipes, keys, values, override syntax
    (["pretrain", "supervised_tny", *RUN], 2, "did you mean 'supervised_tiny'"),
    (["pretrain", "supervised_tiny", "data.num_frame=4", *RUN], 2,
     "unknown key 'data.num_frame' (did you mean 'data.num_frames'?"),
    (["pretrain", "supervised_tiny", "dat.train=x.csv", *RUN], 2, "did you mean 'data'?"),
    (["pretrain", "supervised_tiny", "data.num_frames=many", *RUN], 2, "bad value for 'data.num_frames'"),
    (["pretrain", "supervised_tiny", "optim.lr", *RUN], 2, "bad override 'optim.lr' (expected key=value"),
    (["pretrain", "supervised_tiny", "--run-dir"], 2, "--run-dir: expected one argument"),
    (["pretrain", "supervised_tiny", "--epochs", "3", *RUN], 2, "unknown option(s) --epochs"),
    (["config", "show", "supervised_tiny", "optim.lrr=0.1"], 2, "did you mean 'optim.lr'?"),
    # input paths that are not there
    (["pretrain", "supervised_tiny", "data.train={tmp}/nowhere.csv", *RUN], 2, "nowhere.csv: no such file"),
    (["pretrain", "supervised_tiny", TRAIN, "data.val={tmp}/nowhere.csv", *RUN], 2, "data.val="),
    (["pretrain", "supervised_tiny", TRAIN, "train.init_from={tmp}/nowhere.pt", *RUN], 2,
     "train.init_from={tmp}/nowhere.pt: no such checkpoint file"),
    (["eval", "knn", *EVAL, "--train", "{tmp}/nowhere.csv", "--test", "{synth}/test.csv"], 2,
     "nowhere.csv does not exist"),
    (["eval", "knn", "--checkpoint", "{tmp}/nowhere.pt", "--train", "{synth}/train.csv", "--test",
      "{synth}/test.csv"], 2, "checkpoint not found"),
    (["cluster", "--features", "{tmp}/nowhere.npy"], 2, "not found"),
    (["eval", "knn", *EVAL, "--train", "builtin:train", "--test", "builtin:nope"], 2,
     "unknown built-in manifest 'builtin:nope'"),
    (["pretrain", "supervised_tiny", "data.train=builtin-nope:train", *RUN], 2, "no such file"),
    (["pretrain", "supervised_tiny", TRAIN, "train.amp=fp8", *RUN], 2, "bad value for 'train.amp'"),
    (["pretrain", "supervised_tiny", TRAIN, "train.keep_snapshots=-1", *RUN], 2, "train.keep_snapshots"),
    (["pretrain", "supervised_tiny", TRAIN, "data.decode_threads=0", *RUN], 2, "data.decode_threads"),
    (["check-videos", "{synth}/train.csv", "--workers", "0"], 2, "--workers must be >= 1"),
    # bad options
    (["demo", "--only", "supervised_tny", "--out", "{tmp}/demo"], 2, "did you mean 'supervised_tiny'"),
    (["demo", "--set", "model.widht=2", "--out", "{tmp}/demo"], 2, "did you mean 'model.width'"),
    (["flow", "extract", "{synth}/train.csv", "--out", "{tmp}/flow", "--shard", "2/2"], 2, "--shard '2/2'"),
    (["data", "prepare", "{synth}/train.csv", "--out", "{tmp}/prep", "--shard", "one"], 2, "expected i/n"),
    (["features", "{synth}/test.csv", *EVAL, "--out", "{tmp}/f.npy", "--workers", "-1"], 2, "--workers"),
    (["idt", "extract", "{synth}/train.csv", "--out", "{tmp}/idt", "--workers", "0"], 2, "--workers"),
    (["data", "synth", "{tmp}/synth", "--videos", "1"], 2, "--videos"),
    (["eval", "knnn", *EVAL, "--train", "{synth}/train.csv", "--test", "{synth}/test.csv"], 2,
     "invalid choice: 'knnn'"),
    (["eval", "knn", *EVAL, "--train", "{synth}/train.csv", "--test", "{synth}/test.csv", "stray"], 2,
     "unrecognized arguments: stray"),
    (["compare", "random:supervised_tiny", "--train", "{synth}/train.csv", "--test", "{synth}/test.csv",
      "--evals", "knn,lineer", "--out", "{tmp}/cmp"], 2, "bad --evals lineer"),
    ([], 2, "required: COMMAND"),
    # data that cannot be used: exit 1
    (["pretrain", "supervised_tiny", "data.train={tmp}/missing_video.csv", *RUN], 1, "gone.mp4"),
    (["pretrain", "supervised_tiny", TRAIN, "train.init_from={tmp}/junk.pt", *RUN], 1,
     "corrupt or not a vidssl checkpoint"),
    (["eval", "knn", "--checkpoint", "{tmp}/junk.pt", "--train", "{synth}/train.csv", "--test",
      "{synth}/test.csv"], 1, "corrupt or not a vidssl checkpoint"),
    (["eval", "knn", "--checkpoint", "{tmp}/foreign.pt", "--train", "{synth}/train.csv", "--test",
      "{synth}/test.csv"], 1, "corrupt or not a vidssl checkpoint"),
    (["eval", "linear", "--checkpoint", "{tmp}/other.pt", "--train", "{synth}/train.csv", "--test",
      "{synth}/test.csv"], 1, "is not a vidssl checkpoint"),
    (["cluster", "--features", "{tmp}/junk.npy"], 1, "cannot read features"),
    (["cluster", "--features", "{tmp}/junk.pt"], 1, "cannot read features"),
    (["cluster", "--features", "{tmp}/foreign.pt"], 1, "cannot read features"),
]


def _fill(args, files):
    return [a.format(**files) for a in args]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(PREFIX), err
    return err


@pytest.mark.parametrize("args, code, message", BAD, ids=[" ".join(a[:3]) or "(none)" for a, _, _ in BAD])
def test_a_bad_invocation_is_one_line(files, capsys, args, code, message):
    capsys.readouterr()
    assert main(_fill(args, files)) == code
    assert message.format(**files) in one_line_error(capsys)
    for made in ("run", "demo", "flow", "prep", "idt", "synth", "f.npy", "cmp"):  # nothing was started
        assert not (Path(files["tmp"]) / made).exists(), made


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("VIDSSL_DEBUG", "1")
    with pytest.raises(ConfigError, match="'data.train' is empty"):
        main(["pretrain", "supervised_tiny", "data.train="])


def test_version(capsys):
    import vidssl

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"vidssl {vidssl.__version__}"


def test_recipes_lists_every_packaged_recipe(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    recipes = packaged_recipes()
    assert "supervised_tiny" in recipes and "la_idt_tiny" in out  # training and workflow recipes
    for name, description in recipes.items():
        assert description, name  # every packaged recipe has one
        assert any(line.split(None, 1) == [name, description] for line in out.splitlines()), name


def test_config_show_prints_the_resolved_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "supervised_tiny", "optim.lr=0.5", "data.train=x.csv"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["optim"]["lr"] == 0.5 and cfg["data"]["train"] == "x.csv" and cfg["method"]["name"] == "supervised"
    assert "num_frames" in cfg["data"] and list(tmp_path.iterdir()) == []  # resolved, nothing made
    assert main(["config", "show", "simclr_tiny", "--supervised"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["method"]["name"] == "supervised"


def test_help_has_no_restructured_text(capsys):
    for command in (["cluster"], ["eval"], ["pretrain"], ["features"], ["viz"], ["weights"], ["compare"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        assert "``" not in out and ":func:" not in out and ":mod:" not in out, command


def test_eval_json_to_stdout(synth_dir, capsys):
    assert main(["eval", "knn", *EVAL, "--train", str(synth_dir / "train.csv"), "--test",
                 str(synth_dir / "test.csv"), "--json", "-", "--quiet", *TINY]) == 0
    io = capsys.readouterr()
    metrics = json.loads(io.out)  # stdout is the JSON and nothing else
    assert 0.0 <= metrics["top1"] <= 1.0
    assert "top1" in io.err  # the table went to stderr
