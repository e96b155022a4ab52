"""``model.compile``: the backbones are compiled in place, so a compiled run writes a
checkpoint with the same keys as an uncompiled one (no ``_orig_mod.`` prefix), and the
momentum encoder of MoCo is compiled too.

The quick tests trace with dynamo's ``eager`` backend (the compile path without inductor's
code generation, which takes minutes on 2 CPU cores); the ``slow`` one uses the default
backend (inductor), skipped where it cannot build on this machine."""
import numpy as np
import pytest
import torch

from vidssl.config import load_config
from vidssl.engine import accel
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.resume import RESUME_FREE_KEYS
from vidssl.engine.trainer import train
from vidssl.errors import ConfigError
from vidssl.methods import build_method

TINY = ["model.width=4", "data.num_frames=4", "data.stride=1", "data.crop_size=16", "data.batch_size=4",
        "data.workers=0", "train.epochs=1", "train.max_steps_per_epoch=2", "train.log_every=1",
        "train.progress=false", "method.hidden_dim=32"]


class RandomClips:
    """``n`` videos of ``views`` random clips [C, T, H, W] = [3, 4, 16, 16], unlabelled."""

    num_classes = 0

    def __init__(self, n=8, views=2):
        self.n, self.views = n, views

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        index, seed = key
        clips = np.random.default_rng([seed, index]).standard_normal((self.views, 3, 4, 16, 16)).astype(np.float32)
        return {"clips": (torch.from_numpy(clips),), "index": index, "label": -1, "bad_paths": []}


def run_moco(tmp_path, name, compile_):
    cfg = load_config("moco_tiny", [*TINY, "method.queue_size=64", f"model.compile={str(compile_).lower()}"])
    data = RandomClips()
    torch.manual_seed(0)
    method = build_method(cfg, num_samples=len(data), num_classes=0)
    run = train(cfg, tmp_path / name, dataset=data, method=method)
    return method, load_checkpoint(run / "checkpoints" / "last.pt")


def check_same_checkpoints(plain, compiled):
    assert compiled["step"] == plain["step"] == 2
    assert list(compiled["model"]) == list(plain["model"])
    assert not [k for k in compiled["model"] if "_orig_mod" in k]
    assert compiled["optimizer"]["param_groups"] == plain["optimizer"]["param_groups"]
    assert compiled["config"]["model"]["compile"] and not plain["config"]["model"]["compile"]


def test_compiled_run_writes_the_same_checkpoint_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(accel, "COMPILE_OPTIONS", {"backend": "eager"})
    _, plain = run_moco(tmp_path, "plain", False)
    method, compiled = run_moco(tmp_path, "compiled", True)
    assert accel.is_compiled(method.backbone) and accel.is_compiled(method.backbone_m)
    assert not accel.is_compiled(method.head)
    check_same_checkpoints(plain, compiled)
    # the eager backend computes what the plain run computes
    for k, v in plain["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(compiled["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_compile_keeps_the_state_dict_and_is_resume_free():
    cfg = load_config("simclr_tiny", [*TINY])
    method = build_method(cfg, num_samples=8, num_classes=0)
    keys = list(method.state_dict())
    assert accel.compile_backbones(method, backend="eager") == ["backbone"]
    assert list(method.state_dict()) == keys
    assert "model.compile" in RESUME_FREE_KEYS
    with pytest.raises(ConfigError, match="has no 'backbone'"):
        accel.compile_backbones(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="model.compile"):
        load_config("simclr_tiny", ["model.compile=1"])


def test_channels_last_3d_is_a_layout_only():
    cfg = load_config("moco_tiny", [*TINY])
    method = build_method(cfg, num_samples=8, num_classes=0)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    params = list(method.parameters())
    accel.channels_last_3d(method)
    assert accel.is_channels_last_3d(method) and list(method.parameters()) == params
    for k, v in method.state_dict().items():
        assert torch.equal(v, before[k]), k


def _inductor_usable() -> str | None:
    """None when inductor compiles a tiny function here, else why not."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(2))
    except Exception as e:  # no C++ compiler, an unsupported Python...
        return f"torch.compile (inductor) does not work on this machine: {type(e).__name__}: {str(e)[:120]}"
    return None


@pytest.mark.slow
def test_inductor_compiled_run_writes_the_same_checkpoint_keys(tmp_path):
    """The default backend; a few minutes on 2 CPU cores (the code generation)."""
    why = _inductor_usable()
    if why:
        pytest.skip(why)
    _, plain = run_moco(tmp_path, "plain", False)
    method, compiled = run_moco(tmp_path, "compiled", True)
    assert accel.is_compiled(method.backbone)
    check_same_checkpoints(plain, compiled)
    assert all(torch.isfinite(v).all() for v in compiled["model"].values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())
