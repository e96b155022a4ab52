"""Checkpoints: atomic save, weights_only load, compatibility, RNG round trip."""
import os
import pickle
import random

import numpy as np
import pytest
import torch

from vidssl.config import Config
from vidssl.engine.checkpoint import (
    FORMAT,
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vidssl.errors import CheckpointError


def _ckpt(**kw):
    return {"format": FORMAT, "method": "supervised", "backbone": "r3d18", "config": {}, "model": {"w": torch.ones(2)},
            "epoch": 1, **kw}


def test_save_load_round_trip_and_no_temp_left(tmp_path):
    path = save_checkpoint(tmp_path / "c" / "last.pt", _ckpt(rng=[rng_state()]))
    assert os.listdir(path.parent) == ["last.pt"]
    ck = load_checkpoint(path)
    assert ck["epoch"] == 1 and torch.equal(ck["model"]["w"], torch.ones(2))


def test_save_is_atomic_when_writing_fails(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _ckpt())

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(path, _ckpt(bad=Unpicklable()))
    assert load_checkpoint(path)["epoch"] == 1  # the old checkpoint is whole
    assert os.listdir(tmp_path) == ["last.pt"]


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    cut = tmp_path / "cut.pt"
    good = save_checkpoint(tmp_path / "good.pt", _ckpt())
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(CheckpointError, match="not a vidssl checkpoint"):
        load_checkpoint(plain)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        torch.save({"format": FORMAT, "x": _Payload()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="corrupt or not a vidssl checkpoint"):
        load_checkpoint(evil)


def test_check_compatible_names_both_sides():
    cfg = Config()
    cfg.model.backbone = "r3d18"
    check_compatible(_ckpt(), cfg)
    with pytest.raises(CheckpointError, match=r"'ir'.*'r3d18'.*'supervised'.*'r3d18'"):
        check_compatible(_ckpt(method="ir"), cfg)
    with pytest.raises(CheckpointError, match=r"'slow_r50'.*'r3d18'"):
        check_compatible(_ckpt(backbone="slow_r50"), cfg)


def test_rng_states_round_trip_through_weights_only_file(tmp_path):
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    random.gauss(0, 1)
    path = save_checkpoint(tmp_path / "r.pt", _ckpt(rng=[rng_state()]))
    expect = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn(), random.gauss(0, 1))
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state(load_checkpoint(path)["rng"][0])
    got = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn(), random.gauss(0, 1))
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert expect[2:] == got[2:]
