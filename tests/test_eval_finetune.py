"""Fine-tuning on the engine: frozen stages, L2-SP, the subsets it trains and validates on,
the lr schedules, early stopping, resume, and the CLI end to end on a tiny built-in dataset."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidssl.cli import main
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.eval import finetune
from vidssl.eval.finetune import finetune_subsets
from vidssl.methods.supervised import Supervised, SupervisedConfig
from vidssl.models import build_backbone
from vidssl.models.base import stage_modules

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.workers=0", "data.test_clips=2", "train.progress=false",
        "eval.batch_size=8", "eval.cache=false", "eval.finetune_batch_size=8"]


def _batch(n=4, size=16, frames=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"clips": (torch.randn(n, 1, 3, frames, size, size, generator=g),), "label": torch.arange(n) % 2}


def _net(backbone, num_classes=2, **kw):
    return Supervised(SupervisedConfig(**kw), backbone, num_samples=4, num_classes=num_classes)


@pytest.mark.parametrize("freeze", [0, 2, 5])
def test_frozen_stages_get_no_gradient_and_keep_their_bn_statistics(freeze):
    torch.manual_seed(0)
    net = _net(build_backbone("r3d18", width=4), dropout=0.5, freeze_stages=freeze)
    names = net.backbone.stage_names
    assert net.frozen_stages == names[:freeze]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    net.train()
    for batch in [_batch(), _batch(seed=1)]:
        loss = net(batch)["loss"]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # one more backward to look at the gradients themselves
    opt.zero_grad(set_to_none=True)
    net(_batch())["loss"].backward()
    after = net.state_dict()
    for i, name in enumerate(names):
        stage = net.backbone.stages[name]
        params = list(stage.named_parameters())
        assert params
        if i < freeze:
            assert all(p.grad is None and not p.requires_grad for _, p in params), name
            assert not stage.training  # eval mode: BN uses and keeps its running statistics
            for k in after:  # weights and BN buffers bit-identical
                if k.startswith(f"backbone.stages.{name}."):
                    assert torch.equal(after[k], before[k]), k
        else:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in params), name
            assert stage.training
            changed = [k for k in after if k.startswith(f"backbone.stages.{name}.") and k.endswith("running_mean")]
            assert any(not torch.equal(after[k], before[k]) for k in changed), name
    assert net.classifier.weight.grad is not None and net.classifier.weight.grad.abs().sum() > 0


def test_stage_modules_cover_every_backbone_family():
    sf = build_backbone("slowfast_r18", width=8, beta=8)
    mods = stage_modules(sf, "conv2")
    assert mods[0] is sf.slow["conv2"] and mods[1] is sf.fast["conv2"] and mods[2] is sf.lateral["conv2"]
    assert len(stage_modules(sf, "conv5")) == 2  # no lateral out of the last stage
    trn = build_backbone("trn", width=4, segments=2)
    assert stage_modules(trn, "conv1") == [trn.cnn.stages["conv1"]]
    net = _net(trn, 3, freeze_stages=2)
    assert not any(p.requires_grad for p in trn.cnn.stages["conv2"].parameters())
    assert all(p.requires_grad for p in trn.relations.parameters())
    with pytest.raises(ValueError, match="method.freeze_stages"):
        _net(build_backbone("r3d18", width=4), 2, freeze_stages=6)
    assert net.frozen_stages == ["conv1", "conv2"]


def test_finetune_subsets_are_disjoint_training_videos_of_the_right_size():
    labels = np.array([0] * 40 + [1] * 20 + [2] * 10)
    tr, va = finetune_subsets(labels, 1.0, 0.1, seed=0)
    assert set(tr.tolist()).isdisjoint(va.tolist()) and len(tr) + len(va) == 70
    assert np.bincount(labels[va]).tolist() == [4, 2, 1]
    tr, va = finetune_subsets(labels, 0.5, 0.1, seed=0)  # half the labels: 20, 10, 5, then validation from those
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert np.bincount(labels[np.concatenate([tr, va])]).tolist() == [20, 10, 5]
    assert np.bincount(labels[va], minlength=3).tolist() == [2, 1, 0]  # round(0.5) = 0 (banker's): class 2 keeps all 5
    again = finetune_subsets(labels, 0.5, 0.1, seed=0)
    assert np.array_equal(again[0], tr) and np.array_equal(again[1], va)


def test_l2sp_pulls_towards_the_starting_weights():
    """L2-SP (CPC paper Sec. 4.2.4): the penalty is l2sp / 2 ||w - w0||^2 with w0 the weights
    at the start of training, zero there, and its gradient is l2sp (w - w0)."""
    torch.manual_seed(0)
    net = _net(build_backbone("r3d18", width=4), dropout=0.0, l2sp=0.5, freeze_stages=1).eval()
    net.on_train_start(None)
    plain = _net(build_backbone("r3d18", width=4), dropout=0.0).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("anchor.")})
    batch = _batch()
    assert net(batch)["loss"].item() == pytest.approx(plain(batch)["loss"].item(), abs=1e-6)  # w = w0
    name, moved = [(n, p) for n, p in net.backbone.named_parameters() if p.requires_grad][-3]
    with torch.no_grad():  # move one trainable tensor by 0.1 in both nets
        moved.add_(0.1)
        dict(plain.backbone.named_parameters())[name].add_(0.1)
    expected = 0.5 / 2 * 0.1 ** 2 * moved.numel()
    assert (net(batch)["loss"] - plain(batch)["loss"]).item() == pytest.approx(expected, rel=1e-3)
    frozen = net.backbone.stages["conv1"]
    assert not any(n.startswith("stages__conv1") for n, _ in net.anchor.named_buffers())  # frozen: no anchor
    assert all(not p.requires_grad for p in frozen.parameters())
    # a resume keeps w0 (a buffer of the state dict), and on_train_start does not retake it
    again = _net(build_backbone("r3d18", width=4), dropout=0.0, l2sp=0.5, freeze_stages=1)
    again.load_state_dict(net.state_dict())
    again.on_train_start(None)
    assert all(torch.equal(a, b) for a, b in zip(again.anchor.buffers(), net.anchor.buffers()))


def _scripted_run(monkeypatch, synth_dir, tmp_path, val_accs, overrides):
    """Fine-tune for real (tiny) with the validation accuracy scripted; returns (metrics,
    learning rate of the first step of every epoch)."""
    import vidssl.engine.trainer as trainer
    from vidssl.eval.features import make_context

    ctx = make_context("random", str(synth_dir / "train.csv"), str(synth_dir / "test.csv"),
                       TINY + [f"eval.out_dir={tmp_path}", "train.log_every=1"] + overrides,
                       progress=False, recipe="supervised_tiny")
    script = iter(val_accs)
    monkeypatch.setattr(trainer, "validation_top1", lambda *a, **k: next(script))
    out = finetune.evaluate(ctx)
    recs = [json.loads(x) for x in (Path(out["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if "lr" in r]
    steps = len(train_recs) // out["epochs_run"]
    return out, [r["lr"] for r in train_recs[::steps]]


def test_early_stopping_keeps_the_best_validation_epoch(monkeypatch, synth_dir, tmp_path):
    # 22 training videos, 8 classes: validation 0.5 -> some classes give 1 video each
    out, lrs = _scripted_run(monkeypatch, synth_dir, tmp_path, [0.2, 0.6, 0.4, 0.4, 0.8],
                             ["eval.finetune_epochs=20", "eval.finetune_stop_patience=2",
                              "eval.finetune_val_fraction=0.5", "eval.finetune_milestones=[1]"])
    assert out["epochs_run"] == 4 and out["best_epoch"] == 2  # no gain in epochs 3 and 4: stop
    assert out["val_top1"] == 0.6
    assert out["num_val"] > 0 and out["num_finetune_train"] + out["num_val"] == 22
    assert lrs == pytest.approx([0.025, 0.0025, 0.0025, 0.0025])  # step schedule, milestone at epoch 1
    best = load_checkpoint(Path(out["run_dir"]) / "checkpoints" / "best.pt")
    assert best["epoch"] == 2  # the test used the weights of the best validation epoch


def test_plateau_schedule_drops_when_validation_stalls(monkeypatch, synth_dir, tmp_path):
    out, lrs = _scripted_run(monkeypatch, synth_dir, tmp_path, [0.5, 0.5, 0.5, 0.5, 0.5],
                             ["eval.finetune_epochs=5", "eval.finetune_schedule=plateau", "eval.finetune_lr=0.1",
                              "eval.finetune_lr_patience=1", "eval.finetune_stop_patience=null",
                              "eval.finetune_val_fraction=0.5"])
    assert out["epochs_run"] == 5
    # as ReduceLROnPlateau(patience=1): epoch 1 sets the best, epoch 2 is the first bad one, epoch 3 the second
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01])


def test_finetune_cli_end_to_end(synth_dir, tmp_path):
    out_json = tmp_path / "ft.json"
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"),
                 "--json", str(out_json), "--quiet", *TINY, f"eval.out_dir={tmp_path}", "eval.finetune_epochs=2",
                 "eval.finetune_val_fraction=0.2", "eval.finetune_freeze_stages=2"])
    assert code == 0
    m = json.loads(out_json.read_text())
    assert m["protocol"] == "finetune" and m["views"] == 2  # data.test_clips=2, one crop
    assert 0.0 <= m["clip_top1"] <= 1.0 and 0.0 <= m["video_top1"] <= 1.0 and m["top1"] == m["video_top1"]
    assert m["epochs_run"] == 2 and m["frozen_stages"] == "conv1,conv2"
    assert m["num_finetune_train"] + m["num_val"] == m["num_train"] and m["num_val"] >= 1


def test_finetune_on_a_label_fraction_without_validation(synth_dir, tmp_path):
    out_json = tmp_path / "ft.json"
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"),
                 "--json", str(out_json), "--quiet", *TINY, f"eval.out_dir={tmp_path}", "eval.finetune_epochs=1",
                 "eval.label_fraction=0.05",
                 "eval.views=1x1"])
    assert code == 0
    m = json.loads(out_json.read_text())
    # 5 % of 2-3 videos per class rounds to the minimum of one video per class; none left to validate
    classes = len({line.split(",")[1] for line in (synth_dir / "train.csv").read_text().splitlines()[1:]})
    assert m["num_finetune_train"] == classes and m["num_val"] == 0 and m["val_top1"] is None
    assert m["views"] == 1 and m["label_fraction"] == 0.05


def test_plateau_without_validation_is_a_config_error(synth_dir, capsys):
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"), "--quiet", *TINY,
                 "eval.finetune_schedule=plateau", "eval.finetune_val_fraction=0"])
    assert code == 2 and "finetune_val_fraction" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_finetune_resumes_to_the_same_weights(synth_dir, tmp_path):
    """SIGKILL a real ``vidssl eval finetune`` mid-epoch, run the same command again: it
    resumes its run directory and ends with the weights and metrics of an uninterrupted run."""
    from conftest import run_and_kill_when

    def args(out):
        return ["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"), "--quiet",
                "--json", str(out / "ft.json"), *TINY, "eval.finetune_epochs=3", "eval.finetune_val_fraction=0.2",
                "eval.finetune_l2sp=0.01", "train.checkpoint_every_steps=1", f"eval.out_dir={out}"]

    assert main(args(tmp_path / "full")) == 0
    cut = tmp_path / "cut"
    run_and_kill_when(args(cut), lambda: bool(list(cut.glob("finetune_*/checkpoints/last.pt"))))
    (ckpt,) = cut.glob("finetune_*/checkpoints/last.pt")
    saved = load_checkpoint(ckpt)
    assert not saved["finished"] and saved["epoch_step"] > 0  # killed mid-epoch
    assert main(args(cut)) == 0
    (full_ckpt,) = (tmp_path / "full").glob("finetune_*/checkpoints/last.pt")
    a, b = load_checkpoint(full_ckpt), load_checkpoint(ckpt)
    assert a["step"] == b["step"] and b["finished"] and a["validation"] == b["validation"]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, b["model"][k], rtol=0, atol=1e-5, msg=k)
    m_full, m_cut = (json.loads((d / "ft.json").read_text()) for d in (tmp_path / "full", cut))
    assert m_full["top1"] == m_cut["top1"] and m_full["clip_top1"] == m_cut["clip_top1"]


@pytest.mark.slow
def test_torchrun_finetune_matches_one_process(synth_dir, tmp_path):
    """``torchrun --nproc_per_node 2 -m vidssl eval finetune`` with the global batch split over
    2 CPU processes gives the weights, losses and test metrics of the 1-process run. Every
    stage is frozen and dropout off, so that nothing depends on per-process BatchNorm
    statistics or dropout masks; the engine, the sampler, the validation and the
    classifier's DDP gradients are all exercised."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))

    def args(out):
        return ["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"), "--quiet",
                "--json", str(out / "ft.json"), *TINY, "eval.finetune_epochs=2", "eval.finetune_val_fraction=0.2",
                "eval.finetune_freeze_stages=5", "eval.finetune_dropout=0", "eval.finetune_lr=0.5",
                f"eval.out_dir={out}"]

    assert main(args(tmp_path / "one")) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "vidssl",
                          *args(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (one,) = (tmp_path / "one").glob("finetune_*")
    (two,) = (tmp_path / "two").glob("finetune_*")
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt") for d in (one, two))
    assert a["step"] == b["step"] > 0 and len(b["rng"]) == 2 and a["validation"] == b["validation"]
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, b["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    m1, m2 = (json.loads((tmp_path / d / "ft.json").read_text()) for d in ("one", "two"))
    assert m1["top1"] == m2["top1"] and m1["clip_top1"] == m2["clip_top1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
