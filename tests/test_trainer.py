"""The training loop on a tiny in-memory dataset: run directory, resume = uninterrupted
run, hooks, stop on a non-finite loss, checkpoint checks, init_from, bad videos."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from vidssl.config import load_config
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.resume import init_from
from vidssl.engine.trainer import train
from vidssl.errors import CheckpointError, ConfigError, NonFiniteLossError
from vidssl.methods import supervised

SHAPE = (3, 2, 6, 6)  # C, T, H, W


class RandomClips:
    """``n`` videos of ``views`` random clips; the class shifts the mean so that a model
    can learn. Randomness from ``default_rng([seed, index])`` as in VideoDataset."""

    def __init__(self, n=16, num_classes=3, views=1, bad=()):
        self.n, self.num_classes, self.views, self.bad = n, num_classes, views, set(bad)

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        index, seed = key
        rng = np.random.default_rng([seed, index])
        label = index % self.num_classes
        clips = rng.standard_normal((self.views, *SHAPE)).astype(np.float32) + 0.5 * label
        bad = [f"/videos/broken{index}.mp4"] if index in self.bad else []
        return {"clips": (torch.from_numpy(clips),), "index": index, "label": label, "bad_paths": bad}


class TinyBackbone(nn.Module):
    """[N, C, T, H, W] -> [N, 4]: a 3D conv, GroupNorm (no BatchNorm: per-process
    statistics would make DDP differ from one process), ReLU, global average."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.feat_dim = 4

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3, 4))


class Recording(supervised.Supervised):
    """Supervised method with a buffer and an extra state that the hooks update, to check
    that both survive a resume and that hooks run exactly once per step / epoch."""

    def __init__(self, cfg, backbone, *, num_samples, num_classes, fail_at=None, nan_at=None):
        super().__init__(cfg, backbone, num_samples=num_samples, num_classes=num_classes)
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))
        self.epochs_started: list[int] = []
        self.fail_at, self.nan_at = fail_at, nan_at

    def on_epoch_start(self, progress):
        self.epochs_started.append(progress.epoch)

    def after_step(self, progress):
        assert int(self.steps_seen) == progress.step
        self.steps_seen += 1
        if self.fail_at is not None and progress.step == self.fail_at:
            raise KeyboardInterrupt("simulated crash")

    def forward(self, batch):
        out = super().forward(batch)
        if self.nan_at is not None and self.progress.step == self.nan_at:
            out["loss"] = out["loss"] * float("nan")
        return out

    def get_extra_state(self):
        return {"epochs_started": list(self.epochs_started)}

    def set_extra_state(self, state):
        self.epochs_started = list(state["epochs_started"])


def make_cfg(**overrides):
    items = {"data.batch_size": 4, "data.workers": 0, "train.epochs": 3, "train.log_every": 1,
             "train.progress": False, "optim.lr": 0.05, "method.name": "supervised", "optim.warmup_epochs": 1, "method.dropout": 0.5,
             **overrides}
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def make_method(data, dropout=0.5, l2sp=0.0, **kw):
    torch.manual_seed(0)
    return Recording(supervised.SupervisedConfig(dropout=dropout, l2sp=l2sp), TinyBackbone(), num_samples=len(data),
                     num_classes=data.num_classes, **kw)


def losses(run_dir):
    return [r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_run_directory_contents_and_learning(tmp_path):
    data = RandomClips()
    cfg = make_cfg(**{"train.epochs": 4, "optim.lr": 0.2})
    run = train(cfg, tmp_path / "run", dataset=data, method=make_method(data))
    for name in ("config.yaml", "checkpoints/last.pt", "metrics.jsonl", "summary.json"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 4 and ckpt["step"] == 16 and ckpt["finished"]
    assert ckpt["model"]["steps_seen"] == 16 and ckpt["model"]["_extra_state"]["epochs_started"] == [0, 1, 2, 3]
    assert load_config(run / "config.yaml").optim.lr == 0.2  # the resolved config is saved
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, 17))
    assert {"loss", "lr", "epoch", "clips_per_s", "acc"} <= set(recs[0])
    assert recs[0]["lr"] == 0.0 and recs[6]["lr"] > 0  # warm-up from 0
    first, last = np.mean(losses(run)[:4]), np.mean(losses(run)[-4:])
    assert last < first
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 16 and summary["bad_videos"] == 0 and summary["final_loss"] == pytest.approx(last)


@pytest.mark.parametrize("fail_at,every", [(7, 3), (8, 0)])
def test_resume_gives_the_uninterrupted_result(tmp_path, fail_at, every):
    """Crash at step ``fail_at`` (4 steps per epoch; mid-epoch: checkpoint every 3 steps, the
    last at step 6; or right after the checkpoint at the end of epoch 1), resume with a fresh method: same weights, buffers, losses."""
    data = RandomClips()
    cfg = make_cfg(**{"train.checkpoint_every_steps": every})
    full = train(cfg, tmp_path / "full", dataset=data, method=make_method(data))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", dataset=data, method=make_method(data, fail_at=fail_at))
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert saved["step"] == (6 if fail_at == 7 else 8) and not saved["finished"]
    resumed = train(cfg, tmp_path / "cut", dataset=data, method=make_method(data))
    a = load_checkpoint(full / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-7, msg=k)
    assert b["_extra_state"]["epochs_started"] == [0, 1, 2]  # on_epoch_start not repeated mid-epoch
    assert losses(full) == pytest.approx(losses(resumed), abs=1e-7)  # metrics.jsonl reads as one run


def test_finished_run_is_not_trained_again(tmp_path, capsys):
    data = RandomClips(n=8)
    cfg = make_cfg(**{"train.epochs": 1})
    run = train(cfg, tmp_path / "r", dataset=data, method=make_method(data))
    before = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert train(cfg, run, dataset=data, method=make_method(data)) == run
    assert "already finished" in capsys.readouterr().err
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = RandomClips()
    cfg = make_cfg()
    with pytest.raises(NonFiniteLossError, match=r"step 6 \(epoch 1\).*last good checkpoint"):
        train(cfg, tmp_path / "r", dataset=data, method=make_method(data, nan_at=6))
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if isinstance(v, torch.Tensor))


def test_checkpoint_of_another_method_or_backbone_is_refused(tmp_path):
    data = RandomClips(n=8)
    run = train(make_cfg(**{"train.epochs": 1}), tmp_path / "r", dataset=data, method=make_method(data))
    with pytest.raises(CheckpointError, match=r"backbone 'r3d18'.*backbone 'slow_r18'"):
        train(make_cfg(**{"train.epochs": 2, "model.backbone": "slow_r18"}), run, dataset=data,
              method=make_method(data))


def test_init_from_loads_backbone_weights_only(tmp_path):
    data = RandomClips(n=8)
    run = train(make_cfg(**{"train.epochs": 1}), tmp_path / "r", dataset=data, method=make_method(data))
    other = RandomClips(n=8, num_classes=5)
    fresh = make_method(other)  # a 5-way classifier: only the backbone fits
    init_from(fresh, str(run / "checkpoints" / "last.pt"), make_cfg())
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    for k, v in fresh.state_dict().items():
        if k.startswith("backbone."):
            assert torch.equal(v, saved[k])
    assert fresh.classifier.weight.shape == (5, 4)
    with pytest.raises(CheckpointError, match="holds backbone 'r3d18'"):
        init_from(fresh, str(run / "checkpoints" / "last.pt"), make_cfg(**{"model.backbone": "r3d34"}))
    # backbone only: a classifier of the same shape is not taken over (fine-tuning starts it fresh)
    same = make_method(data)
    torch.nn.init.zeros_(same.classifier.weight)
    init_from(same, str(run / "checkpoints" / "last.pt"), make_cfg(**{"train.init_backbone_only": True}))
    assert torch.equal(same.backbone.conv.weight, saved["backbone.conv.weight"])
    assert not same.classifier.weight.any()
    init_from(same, str(run / "checkpoints" / "last.pt"), make_cfg())
    assert torch.equal(same.classifier.weight, saved["classifier.weight"])


def test_bad_videos_counted_once_and_bad_sizes_refused(tmp_path):
    data = RandomClips(n=8, bad={1, 5})
    run = train(make_cfg(**{"train.epochs": 2}), tmp_path / "r", dataset=data, method=make_method(data))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["bad_videos"] == 2
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "event" in x]
    assert sorted(e["path"] for e in events) == ["/videos/broken1.mp4", "/videos/broken5.mp4"]
    with pytest.raises(ConfigError, match="fewer than one batch"):
        train(make_cfg(**{"data.batch_size": 16}), tmp_path / "s", dataset=data, method=make_method(data))


def test_max_steps_per_epoch_and_multiview_batches(tmp_path):
    data = RandomClips(n=16, views=2)
    cfg = make_cfg(**{"train.epochs": 2, "train.max_steps_per_epoch": 2, "train.log_every": 2})
    run = train(cfg, tmp_path / "r", dataset=data, method=make_method(data))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["model"]["steps_seen"] == 4
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4]


# ----------------------------------------------------------------------------- the real command

CLI_TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=16", "data.augment.short_side=[16,20]",
            "data.batch_size=2", "data.workers=0", "train.epochs=2", "train.progress=false",
            "train.checkpoint_every_steps=1", "method.dropout=0.5"]


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    from vidssl.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth"), videos=12, seed=1, size=32, frames=16)["train"]


@pytest.mark.slow
def test_killed_train_supervised_resumes_to_the_same_weights(tiny_videos, tmp_path):
    """SIGKILL a real ``vidssl train-supervised`` process mid-epoch, resume it: same final
    weights as an uninterrupted run."""
    from conftest import run_and_kill_when

    from vidssl.cli import main

    args = ["train-supervised", "supervised_tiny", f"data.train={tiny_videos}", *CLI_TINY]
    assert main([*args, "--run-dir", str(tmp_path / "full")]) == 0
    cut = tmp_path / "cut"
    ckpt = cut / "checkpoints" / "last.pt"
    run_and_kill_when([*args, "--run-dir", str(cut)], ckpt.is_file)  # at the first mid-epoch checkpoint
    saved = load_checkpoint(ckpt)
    assert not saved["finished"]
    assert main([*args, "--run-dir", str(cut)]) == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(ckpt)
    assert a["step"] == b["step"] and b["finished"]
    diffs = [(a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"]
             if isinstance(a["model"][k], torch.Tensor) and a["model"][k].is_floating_point()]
    print(f"killed at step {saved['step']}; max |weight difference| = {max(diffs):.3g}")
    assert max(diffs) < 1e-5
    assert losses(tmp_path / "full") == pytest.approx(losses(cut), abs=1e-5)


def test_command_options_anywhere_and_supervised_forced():
    from vidssl.cli import build_parser
    from vidssl.commands.pretrain import split_options
    from vidssl.config import load_recipe

    args = build_parser().parse_args(["train-supervised", "ir_r3d18", "optim.lr=0.3", "--run-dir", "R",
                                      "--no-resume", "train.epochs=2"])
    opts, overrides = split_options(args)
    assert (opts.run_dir, opts.resume, overrides) == ("R", False, ["optim.lr=0.3", "train.epochs=2"])
    cfg = load_recipe("ir_r3d18", overrides + ["method.name=la"], supervised=args.supervised)
    assert cfg.method_name == "supervised" and cfg.optim.lr == 0.3 and cfg.model.backbone == "r3d18"
    assert load_recipe("ir_r3d18", [], supervised=False).method_name == "ir"
    bad = build_parser().parse_args(["pretrain", "supervised_tiny", "a=1", "--bogus"])
    with pytest.raises(ConfigError, match="--bogus"):
        split_options(bad)


# ----------------------------------------------------------------------------- host synchronisation


class HostReads(torch.Tensor):
    """A tensor that counts the reads of its value to the host (``item``, ``float``,
    ``bool``, ``tolist``, ``numpy``, ...); every tensor computed from it is one too."""

    reads = 0
    READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__float__,
             torch.Tensor.__int__, torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.__format__}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls.READS:
            cls.reads += 1
        return super().__torch_function__(func, types, args, kwargs or {})


class Counted(Recording):
    """The loss and the logs come out as :class:`HostReads` tensors."""

    def forward(self, batch):
        out = super().forward(batch)
        return {"loss": out["loss"].as_subclass(HostReads),
                "logs": {k: v.as_subclass(HostReads) for k, v in out["logs"].items()}}


@pytest.mark.parametrize("log_every", [1, 4])
def test_the_loss_is_read_from_the_device_once_per_log_every_steps(tmp_path, log_every):
    data = RandomClips(n=32)
    cfg = make_cfg(**{"train.epochs": 2, "train.log_every": log_every})  # 8 steps per epoch
    torch.manual_seed(0)
    method = Counted(supervised.SupervisedConfig(), TinyBackbone(), num_samples=len(data), num_classes=3)
    HostReads.reads = 0
    run = train(cfg, tmp_path / "r", dataset=data, method=method)
    steps = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert steps == 16
    assert 0 < HostReads.reads <= steps // log_every  # one read per metrics line, none inside a step
    # the counter does see a read per step when there is one
    before = HostReads.reads
    for _ in range(3):
        float(method(next(iter([{"clips": (torch.randn(2, 1, *SHAPE),), "label": torch.tensor([0, 1]),
                                 "index": torch.tensor([0, 1])}])))["loss"].detach())
    assert HostReads.reads == before + 3


def test_bf16_autocast_is_on_for_cuda_only(monkeypatch):
    """The training step's autocast: bf16 on CUDA with train.amp, off on the CPU or without amp."""
    from vidssl.engine import loop

    calls = []
    monkeypatch.setattr(loop.torch, "autocast", lambda device_type, dtype, enabled: calls.append(
        (device_type, dtype, enabled)))
    for device_type, amp in [("cuda", True), ("cuda", False), ("cpu", True)]:
        loop.autocast(device_type, amp)
    assert calls == [("cuda", torch.bfloat16, True), ("cuda", torch.bfloat16, False), ("cpu", torch.bfloat16, False)]
    assert make_cfg().train.amp  # on by default


def test_validation_settings_without_a_validation_set_are_refused(tmp_path):
    data = RandomClips(n=8)
    for key, value in [("optim.schedule", "plateau"), ("train.stop_patience", 3)]:
        with pytest.raises(ConfigError, match="need a validation set"):
            train(make_cfg(**{key: value}), tmp_path / key, dataset=data, method=make_method(data))
