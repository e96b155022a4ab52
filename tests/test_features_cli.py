"""``vidssl features`` end to end: the .npy rows are ``Encoder.embed`` of each video (and the
eval features), the .csv beside it is the manifest's paths and labels; bad input is one line."""
import csv

import numpy as np
import pytest
import torch

import vidssl
from vidssl.cli import main
from vidssl.eval.features import make_context

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.test_clips=2", "data.workers=0", "eval.cache=false", "eval.batch_size=8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory whose checkpoint holds perturbed ir_tiny weights (TINY sizes, in the config)."""
    from vidssl.config import load_config, to_dict
    from vidssl.engine.checkpoint import FORMAT, save_checkpoint

    enc = vidssl.load_encoder("random", TINY, recipe="ir_tiny")
    g = torch.Generator().manual_seed(1)
    state = {f"backbone.{k}": (v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
             for k, v in enc.backbone.state_dict().items()}
    run = tmp_path_factory.mktemp("run")
    cfg = load_config("ir_tiny", TINY)
    save_checkpoint(run / "checkpoints" / "last.pt", {"format": FORMAT, "method": "ir", "backbone": "r3d18",
                                                      "config": to_dict(cfg), "model": state})
    return run


def read_table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_features_of_a_checkpoint_equal_embed_and_eval_features(synth_dir, run_dir, tmp_path, capsys):
    out = tmp_path / "feats" / "train.npy"
    manifest = synth_dir / "train.csv"
    code = main(["features", str(manifest), "--checkpoint", str(run_dir), "--out", str(out), "--workers", "2",
                 "--batch-size", "4", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "features to" in capsys.readouterr().out
    feats = np.load(out)
    rows = read_table(tmp_path / "feats" / "train.csv")
    assert feats.dtype == np.float32 and feats.shape[0] == len(rows)

    enc = vidssl.load_encoder(run_dir)
    m = enc.open_manifest(manifest)
    assert [r["path"] for r in rows] == m.paths
    assert [int(r["label"]) for r in rows] == m.labels
    assert [r["class"] for r in rows] == [m.classes[y] for y in m.labels]
    assert [r["appearance"] for r in rows] == m.columns["appearance"]
    assert {r["decoded"] for r in rows} == {"1"}
    for i in (0, 5, len(rows) - 1):
        torch.testing.assert_close(torch.from_numpy(feats[i]), enc.embed(rows[i]["path"]), rtol=1e-5, atol=1e-6)

    ctx = make_context(str(run_dir / "checkpoints" / "last.pt"), str(manifest), str(synth_dir / "test.csv"),
                       ["eval.cache=false"], progress=False)
    train_f, _ = ctx.features("train")
    torch.testing.assert_close(torch.from_numpy(feats), train_f.mean(1), rtol=1e-5, atol=1e-6)
    # random weights differ from the checkpoint's
    rand = vidssl.load_encoder("random", TINY, recipe="ir_tiny").embed(rows[0]["path"])
    assert not torch.allclose(rand, torch.from_numpy(feats[0]))


def test_random_weights_of_a_recipe_and_another_label_column(synth_dir, tmp_path, capsys):
    out = tmp_path / "test.npy"
    code = main(["features", str(synth_dir / "test.csv"), "--checkpoint", "random", "--config", "ir_tiny",
                 "--out", str(out), "--label-column", "appearance", "--quiet", *TINY])
    assert code == 0, capsys.readouterr().err
    rows = read_table(tmp_path / "test.csv")
    enc = vidssl.load_encoder("random", TINY, recipe="ir_tiny")
    m = enc.open_manifest(synth_dir / "test.csv", label_column="appearance")
    assert [r["class"] for r in rows] == [m.classes[y] for y in m.labels]
    assert [int(r["label"]) for r in rows] == m.labels
    assert list(rows[0]) == ["path", "label", "class", "decoded"]  # the motion column 'label' gives way
    torch.testing.assert_close(torch.from_numpy(np.load(out)), enc.embed_batch(m), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args, code, message", [
    (["--checkpoint", "{tmp}/nowhere"], 2, "checkpoint not found"),
    (["--checkpoint", "random", "--config", "ir_tiny", "--out", "{tmp}/f.csv"], 2, ".npy"),
    (["--checkpoint", "random", "--config", "ir_tiny", "--workers", "-1"], 2, "--workers"),
    (["--checkpoint", "{run}", "--config", "ir_tiny"], 2, "random"),
])
def test_bad_options_are_one_line(synth_dir, run_dir, tmp_path, capsys, args, code, message):
    args = [a.format(tmp=tmp_path, run=run_dir) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "f.npy")]
    assert main(["features", str(synth_dir / "test.csv"), *args, "--quiet", *TINY]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f.npy").exists()


def test_a_bad_manifest_is_one_line(tmp_path, capsys):
    m = tmp_path / "m.csv"
    m.write_text("path,label\nnowhere/a.mp4,0\n")
    assert main(["features", str(m), "--checkpoint", "random", "--config", "ir_tiny", "--out",
                 str(tmp_path / "f.npy"), "--quiet", *TINY]) == 1
    err = capsys.readouterr().err
    assert "a.mp4" in err and "Traceback" not in err
    assert not (tmp_path / "f.npy").exists() and not (tmp_path / "f.csv").exists()
