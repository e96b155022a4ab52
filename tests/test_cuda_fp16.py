"""fp16 training with a GradScaler (``train.amp=fp16``, and ``true`` on GPUs without native
bf16): the step, clipping on unscaled gradients, skipped overflow steps, and the scaler's
state in checkpoints and across a resume.

As in ``tests/test_cuda.py`` every test takes ``device``: ``cpu`` runs here and in CI with an
enabled CPU GradScaler (the same scaling code; the CPU forward stays float32), ``cuda`` is
marked ``cuda`` and skipped without a GPU (``benchmarks/device_check.py`` runs it), with fp16
autocast. Config and resolution checks need no device."""
import pytest
import torch
from test_cuda import build, frame_folders
from test_trainer import RandomClips, make_cfg, make_method

from vidssl.config import load_config
from vidssl.data.batch import flatten_views
from vidssl.engine import precision
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.loop import autocast, train_step
from vidssl.engine.trainer import train
from vidssl.errors import ConfigError
from vidssl.methods.base import Progress

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is false)")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, NO_CUDA])]


def scaler_for(device: str, **kw) -> torch.amp.GradScaler:
    """fp16's scaler: the engine's on CUDA; an enabled CPU one here (the engine disables it on the CPU)."""
    if device == "cuda":
        return precision.grad_scaler("fp16", "cuda")
    return torch.amp.GradScaler("cpu", enabled=True, **kw)


def test_amp_values_and_their_resolution(monkeypatch):
    for text, value in [("true", True), ("false", False), ("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32")]:
        assert load_config(None, [f"train.amp={text}"]).train.amp == value
    with pytest.raises(ConfigError, match=r"'train.amp': 'fp8' \(expected bool or one of 'bf16', 'fp16', 'fp32'\)$"):
        load_config(None, ["train.amp=fp8"])
    for amp in (True, False, "bf16", "fp16", "fp32"):
        assert precision.resolve_precision(amp, "cpu") == "fp32"  # the CPU is always float32
    monkeypatch.setattr(precision, "native_bf16", lambda: False)  # a V100 / T4
    assert [precision.resolve_precision(a, "cuda") for a in (True, "bf16", "fp16", False, "fp32")] == \
        ["fp16", "bf16", "fp16", "fp32", "fp32"]
    monkeypatch.setattr(precision, "native_bf16", lambda: True)  # Ampere and later
    assert precision.resolve_precision(True, "cuda") == "bf16"


def test_autocast_dtype_and_the_disabled_scaler_on_the_cpu():
    calls = []
    real = torch.autocast
    try:
        torch.autocast = lambda device_type, dtype, enabled: calls.append((device_type, dtype, enabled))
        for amp in ("fp16", "bf16", True, "fp32", False):
            autocast("cuda", amp)
        autocast("cpu", "fp16")
    finally:
        torch.autocast = real
    assert [(d, e) for _, d, e in calls] == [(torch.float16, True), (torch.bfloat16, True), (torch.bfloat16, True),
                                            (torch.bfloat16, False), (torch.bfloat16, False), (torch.float16, False)]
    off = precision.grad_scaler("fp16", "cpu")  # what the engine makes on the CPU
    assert not off.is_enabled() and off.state_dict() == {}
    assert not precision.load_scaler_state(off, {"scale": 8.0})
    assert not precision.load_scaler_state(precision.grad_scaler("bf16", "cpu"), {})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("clip", [None, 0.5])
def test_scaled_step_equals_the_plain_step(device, clip):
    """Scaling by a power of two and unscaling before the clip and the step is exact: the
    weights after a scaled step are the plain step's (tight tolerance under fp16 autocast)."""
    _, plain, opt_plain, batch = build("supervised", device)
    _, scaled, opt_scaled, _ = build("supervised", device)
    amp = "fp16" if device == "cuda" else False
    scaler = scaler_for(device)
    for step in range(2):
        progress = Progress(step=step, steps_per_epoch=8, epochs=2)
        train_step(plain, plain, batch, opt_plain, progress, lr=0.01, amp=amp, grad_clip=clip)
        out = train_step(scaled, scaled, batch, opt_scaled, progress, lr=0.01, amp=amp, grad_clip=clip, scaler=scaler)
        assert torch.isfinite(out["loss"]).item()
    assert scaler.get_scale() == 65536.0  # no overflow, not yet grown (growth_interval 2000)
    for (k, a), b in zip(plain.state_dict().items(), scaled.state_dict().values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            if device == "cpu":
                assert torch.equal(a, b), k
            else:  # fp16 kernels: the same inputs, the same order; scaling may change the rounding of tiny gradients
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=k)


@pytest.mark.parametrize("device", DEVICES)
def test_an_overflowing_step_is_skipped_and_the_scale_halved(device):
    _, method, optimizer, batch = build("supervised", device)
    scaler = scaler_for(device, init_scale=2.0**20) if device == "cpu" else scaler_for(device)
    before = {k: v.detach().clone() for k, v in method.named_parameters()}
    scale = scaler.get_scale()

    class Overflow(torch.nn.Module):  # the method's loss times inf: every gradient overflows
        def forward(self, b):
            out = method(b)
            return {**out, "loss": out["loss"] * float("inf")}

    train_step(Overflow(), method, batch, optimizer, Progress(steps_per_epoch=8, epochs=2), lr=0.1,
               amp="fp16" if device == "cuda" else False, scaler=scaler)
    assert scaler.get_scale() == scale / 2
    for k, v in method.named_parameters():
        assert torch.equal(v, before[k]), k  # the optimiser step was skipped


def test_scaler_state_is_checkpointed_and_resumed(tmp_path, monkeypatch):
    """With an enabled scaler (CPU here), ``checkpoints/last.pt`` holds its state, and a run cut
    at a checkpoint and resumed ends with the uninterrupted run's scale and weights."""
    from vidssl.engine import trainer

    # growth every 2 steps, so that the scale moves during the run
    monkeypatch.setattr(trainer, "grad_scaler", lambda p, d: torch.amp.GradScaler("cpu", init_scale=4.0,
                                                                                 growth_interval=2))
    data = RandomClips()
    cfg = make_cfg(**{"train.checkpoint_every_steps": 3})  # 3 epochs of 4 steps
    full = load_checkpoint(train(cfg, tmp_path / "full", dataset=data, method=make_method(data)) /
                           "checkpoints" / "last.pt")
    assert full["scaler"]["scale"] == 4.0 * 2 ** 6 and full["scaler"]["_growth_tracker"] == 0  # 12 steps
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", dataset=data, method=make_method(data, fail_at=7))
    cut = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert cut["step"] == 6 and cut["scaler"]["scale"] == 4.0 * 2 ** 3
    resumed = load_checkpoint(train(cfg, tmp_path / "cut", dataset=data, method=make_method(data)) /
                              "checkpoints" / "last.pt")
    assert resumed["scaler"] == full["scaler"]
    for k, v in full["model"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, resumed["model"][k]), k


def test_the_cpu_engine_writes_an_empty_scaler_state(tmp_path):
    data = RandomClips(n=8)
    run = train(make_cfg(**{"train.epochs": 1, "train.amp": "fp16"}), tmp_path / "r", dataset=data,
                method=make_method(data))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["scaler"] == {}


@pytest.mark.cuda
@NO_CUDA
def test_fp16_steps_and_cli_run_on_cuda(tmp_path):
    """On the GPU: fp16 autocast in the forward, the engine's scaler over a few steps, and
    ``train.amp=fp16`` through the command line, whose checkpoint holds the scaler's state."""
    from vidssl.cli import main

    _, method, optimizer, batch = build("supervised", "cuda")
    with torch.no_grad(), autocast("cuda", "fp16"):
        pooled = method.backbone(*flatten_views(batch["clips"]))
    assert pooled.dtype == torch.float16
    scaler = precision.grad_scaler("fp16", "cuda")
    outs = [train_step(method, method, batch, optimizer, Progress(step=i, steps_per_epoch=8, epochs=2), lr=0.01,
                       amp="fp16", scaler=scaler) for i in range(3)]
    assert all(torch.isfinite(o["loss"]).item() for o in outs) and scaler.get_scale() > 0
    run = tmp_path / "run"
    assert main(["pretrain", "supervised_tiny", f"data.train={frame_folders(tmp_path / 'frames')}",
                 "data.backend=frames", "train.device=cuda", "train.amp=fp16", "--run-dir", str(run),
                 "model.width=4", "data.num_frames=4", "data.stride=1", "data.crop_size=16",
                 "data.augment.short_side=[16, 20]", "data.batch_size=2", "data.workers=0", "train.epochs=1",
                 "train.max_steps_per_epoch=2", "train.log_every=1", "train.progress=false"]) == 0
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["finished"] and ckpt["step"] == 2 and ckpt["scaler"]["scale"] > 0
