"""``train.keep_snapshots``: epoch checkpoints beside ``last.pt``, the newest N kept."""
import os

import pytest
import torch
from test_trainer import RandomClips, make_cfg, make_method

from vidssl.engine import snapshots
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.trainer import train
from vidssl.errors import ConfigError


def run(tmp_path, keep, epochs=5, name="r", **kw):
    data = RandomClips(n=8)  # 2 steps an epoch
    cfg = make_cfg(**{"train.epochs": epochs, "train.keep_snapshots": "null" if keep is None else keep})
    return train(cfg, tmp_path / name, dataset=data, method=make_method(data), **kw) / "checkpoints"


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_the_last_n_epochs_are_kept_and_each_is_its_epochs_checkpoint(tmp_path):
    folder = run(tmp_path, 2)
    assert names(folder) == ["epoch_0004.pt", "epoch_0005.pt", "last.pt"]
    e4, e5, last = (load_checkpoint(folder / n) for n in names(folder))
    assert (e4["epoch"], e4["step"], e4["finished"]) == (4, 8, False)  # last.pt was replaced since: e4 kept its data
    assert (e5["epoch"], e5["step"], e5["finished"]) == (5, 10, True)
    assert all(torch.equal(v, last["model"][k]) for k, v in e5["model"].items() if isinstance(v, torch.Tensor))
    assert not all(torch.equal(v, last["model"][k]) for k, v in e4["model"].items() if isinstance(v, torch.Tensor))


def test_zero_keeps_none_and_null_keeps_every_epoch(tmp_path):
    assert names(run(tmp_path, 0, name="zero")) == ["last.pt"]  # the default: only last.pt, as before
    assert make_cfg().train.keep_snapshots == 0
    assert names(run(tmp_path, None, epochs=3, name="all")) == ["epoch_0001.pt", "epoch_0002.pt", "epoch_0003.pt",
                                                                "last.pt"]
    with pytest.raises(ConfigError, match="train.keep_snapshots"):
        make_cfg(**{"train.keep_snapshots": -1})


def test_a_run_started_over_drops_the_old_runs_later_snapshots(tmp_path):
    run(tmp_path, None, epochs=3)
    folder = run(tmp_path, None, epochs=1, resume=False)  # --no-resume: epochs 2 and 3 were another run's
    assert names(folder) == ["epoch_0001.pt", "last.pt"]


def test_a_resume_may_change_keep_snapshots(tmp_path, capsys):
    data = RandomClips(n=8)
    with pytest.raises(KeyboardInterrupt):  # a crash in epoch 2, after the checkpoint of epoch 1
        train(make_cfg(**{"train.epochs": 4}), tmp_path / "r", dataset=data, method=make_method(data, fail_at=3))
    capsys.readouterr()
    folder = run(tmp_path, 1, epochs=4)  # resumed, now with snapshots: no "changed config" warning
    err = capsys.readouterr().err
    assert "resuming" in err and "changed config" not in err
    assert names(folder) == ["epoch_0004.pt", "last.pt"]


def test_without_hard_links_the_snapshot_is_a_copy(tmp_path, monkeypatch):
    last = tmp_path / "last.pt"
    last.write_bytes(b"epoch three")
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("no links here")))
    dest = snapshots.save_snapshot(last, 3)
    last.write_bytes(b"epoch four")
    assert dest.name == "epoch_0003.pt" and dest.read_bytes() == b"epoch three"
    assert snapshots.prune_snapshots(tmp_path, 1, 3) == [] and snapshots.snapshots(tmp_path) == {3: dest}
