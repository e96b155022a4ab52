"""The training side of ``device_check.py``: clips/s of each method's step, and the share
of a step spent waiting for data.

Sizes: ``paper`` = the recipes at the papers' sizes (Slow R-50 8x8x224 for supervised and
the rho-methods, ``{method}_slow_r50``; 3D ResNet-18 16x112 for IR and LA, ``ir_r3d18`` /
``la_r3d18``; ``cpc_ucf101``), with a memory bank of ``bank`` rows (Kinetics: 240,000);
``tiny`` = the ``*_tiny`` recipes, smaller still with ``quick``. A variant is a layout
(``channels_last``: the 5-D weights channels-last-3d, :func:`vidssl.engine.accel.channels_last_3d`,
and the backbone's own CPU input conversion on; off: both off) and ``compile``
(:func:`vidssl.engine.accel.compile_backbones`). Every step is the engine's
:func:`vidssl.engine.loop.train_step` (bf16 autocast on CUDA) on a random batch; LA gets
random cluster labels, so its step is timed without its k-means (timed on its own).
"""
from __future__ import annotations

import gc
import time

import torch

from vidssl.config import in_channels, load_config
from vidssl.data.batch import to_device
from vidssl.engine import accel
from vidssl.engine.loop import train_step
from vidssl.engine.optim import build_optimizer
from vidssl.engine.precision import resolve_precision
from vidssl.methods import build_method
from vidssl.methods.base import Progress
from vidssl.models import backbone_options

RHO_METHODS = ("moco", "simclr", "byol", "swav")
PAPER_RECIPES = {"supervised": "supervised_slow_r50", "ir": "ir_r3d18", "la": "la_r3d18", "cpc": "cpc_ucf101",
                 **{m: f"{m}_slow_r50" for m in RHO_METHODS}}
# LA from its first step (no IR warm-up); tiny heads and clusters for the tiny sizes
PAPER_EXTRA = {"la": ["method.ir_warmup_epochs=0"]}
TINY_EXTRA = {"la": ["method.ir_warmup_epochs=0", "method.num_clusters=4", "method.background_neighbors=16"],
              "cpc": ["data.views=3", "method.segments=3"]}
QUICK = ["model.width=4", "data.num_frames=4", "data.stride=1", "data.crop_size=16", "data.test_short_side=20",
         "data.augment.short_side=[20, 24]"]
QUICK_EXTRA = {"cpc": ["model.options.frames=4"]}  # CPC's encoder stacks data.num_frames frames
NUM_CLASSES = 400  # the supervised head: Kinetics-400


class Skip(Exception):
    """A figure that cannot be measured here; its message is the reason."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def method_config(name: str, size: str, quick: bool, channels_last: bool | None = None, extra=()):
    """The validated config of ``name`` at ``size`` (``paper`` | ``tiny``), with the
    backbone's CPU input conversion set to ``channels_last`` (None: the recipe's)."""
    if size == "paper":
        recipe, overrides = PAPER_RECIPES[name], list(PAPER_EXTRA.get(name, []))
    else:
        recipe, overrides = f"{name}_tiny", [*TINY_EXTRA.get(name, []),
                                             *([*QUICK, *QUICK_EXTRA.get(name, [])] if quick else [])]
    overrides += list(extra)
    cfg = load_config(recipe, overrides)
    if channels_last is not None:
        if "channels_last" not in backbone_options(cfg.model.backbone):
            if channels_last:
                raise Skip(f"backbone {cfg.model.backbone} has no 3D layout option (2D network)")
        else:
            cfg = load_config(recipe, [*overrides, f"model.options.channels_last={str(channels_last).lower()}"])
    return cfg


def random_batch(cfg, clips: int, bank: int, device: torch.device) -> dict:
    """A batch of ``clips // data.views`` videos of random clips, indices into a bank of ``bank`` rows."""
    d = cfg.data
    videos = max(1, clips // d.views)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(videos, d.views, in_channels(d.modality), d.num_frames, d.crop_size, d.crop_size, generator=g)
    return to_device({"clips": (x,), "index": torch.randint(0, bank, (videos,), generator=g),
                      "label": torch.randint(0, NUM_CLASSES, (videos,), generator=g), "bad_paths": []}, device)


def build(cfg, device: torch.device, bank: int, *, channels_last: bool, compile_: bool):
    """The method of ``cfg`` on ``device`` (bank / queue / clusters ready) and its optimiser."""
    torch.manual_seed(0)
    classes = NUM_CLASSES if cfg.method_name == "supervised" else 0
    method = build_method(cfg, num_samples=bank, num_classes=classes).to(device).train()
    if channels_last:
        accel.channels_last_3d(method)
    if compile_:
        accel.compile_backbones(method)
    if cfg.method_name == "la":  # random clusters: the step without the k-means
        method.cluster_labels.random_(0, method.num_clusters)
        method.clustered_epoch.fill_(0)
    return method, build_optimizer(method, cfg.optim)


def time_steps(method, optimizer, batch, device: torch.device, *, seconds: float, warmup: int = 2,
               min_steps: int = 2, max_steps: int = 500) -> dict:
    """Warm-up steps (the compilation, cuDNN's choices), then steps for about ``seconds``."""
    progress = Progress(steps_per_epoch=10**6, epochs=1)

    def step():
        train_step(method, method, batch, optimizer, progress, optimizer.param_groups[0]["lr"], amp=True)
        progress.step += 1

    sync(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    warm = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n, t0 = 0, time.perf_counter()
    while n < min_steps or (time.perf_counter() - t0 < seconds and n < max_steps):
        step()
        n += 1
    sync(device)
    elapsed = time.perf_counter() - t0
    clips = batch["clips"][0].shape[0] * batch["clips"][0].shape[1]
    out = {"clips_per_s": n * clips / elapsed, "step_ms": 1000 * elapsed / n, "steps": n, "warmup_s": warm,
           "batch_clips": clips}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def release(device: torch.device, compiled: bool = False) -> None:
    gc.collect()
    if compiled:
        torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def describe(cfg) -> dict:
    d = cfg.data
    return {"recipe_backbone": cfg.model.backbone, "width": cfg.model.width,
            "clip": f"{d.num_frames}x{d.crop_size}x{d.crop_size}", "stride": d.stride, "views": d.views}


def step_speed(name: str, variant: dict, *, size: str, quick: bool, clips: int, bank: int, device: torch.device,
               seconds: float) -> dict:
    """One figure: clips/s of ``name``'s step in ``variant`` (``channels_last``, ``compile``)."""
    cfg = method_config(name, size, quick, channels_last=variant["channels_last"])
    method = optimizer = batch = None
    try:
        method, optimizer = build(cfg, device, bank, channels_last=variant["channels_last"],
                                  compile_=variant["compile"])
        batch = random_batch(cfg, clips, bank, device)
        # --quick (the test): no warm-up, one step at least: a check of the code, not a figure
        out = time_steps(method, optimizer, batch, device, seconds=seconds,
                         warmup=0 if quick else (1 if size == "tiny" else 2), min_steps=1 if quick else 2)
        return {**describe(cfg), "precision": resolve_precision(cfg.train.amp, device.type),
                **out}
    finally:
        del method, optimizer, batch
        release(device, variant["compile"])


def data_wait(name: str, dataset_fn, *, size: str, quick: bool, bank: int, device: torch.device, workers: int,
              seconds: float, videos_per_step: int) -> dict:
    """The engine's loop (loader -> ``to_device`` -> step) for about ``seconds``, the
    device synchronised after every step: the share of the wall time spent waiting for
    the next batch (0 = the loader keeps up, the GPU never waits)."""
    from device_loader import Repeated

    from vidssl.data.datasets import build_loader

    cfg = method_config(name, size, quick, channels_last=True)
    dataset = dataset_fn(cfg.data)
    method, optimizer = build(cfg, device, bank, channels_last=True, compile_=False)
    loader = build_loader(Repeated(dataset, videos_per_step * 2000), videos_per_step, shuffle=True, seed=0,
                          workers=workers)
    progress = Progress(steps_per_epoch=10**6, epochs=1)
    lr = optimizer.param_groups[0]["lr"]
    it = iter(loader)
    try:
        for _ in range(1 if quick else 2):  # the workers' start and the first steps
            train_step(method, method, to_device(next(it), device), optimizer, progress, lr, amp=True)
        sync(device)
        wait = busy = 0.0
        n = 0
        while n < (1 if quick else 2) or wait + busy < seconds:
            t0 = time.perf_counter()
            batch = to_device(next(it), device)
            t1 = time.perf_counter()
            train_step(method, method, batch, optimizer, progress, lr, amp=True)
            progress.step += 1
            sync(device)
            wait, busy, n = wait + t1 - t0, busy + time.perf_counter() - t1, n + 1
        clips = videos_per_step * cfg.data.views
        return {**describe(cfg), "workers": workers, "batch_videos": videos_per_step, "steps": n,
                "wait_share": wait / (wait + busy), "wait_ms_per_step": 1000 * wait / n,
                "step_ms": 1000 * busy / n, "clips_per_s": n * clips / (wait + busy)}
    finally:
        del it, loader, method, optimizer
        release(device)
