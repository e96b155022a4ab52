"""The training loop: one plain PyTorch loop for every method (no method branches).

``train(cfg)`` builds the manifest, dataset, method, optimiser and schedule, then for
every epoch calls ``method.on_epoch_start``, and for every step sets the learning
rate, runs the forward under bf16 autocast (CUDA only), the backward, an optional
gradient clip, the optimiser step and ``method.after_step``. The same code runs one
CPU process, one GPU, or N processes under ``torchrun`` (DDP).

Resuming gives the same run: the checkpoint (``checkpoints/last.pt``, written
atomically at the end of every epoch and every ``train.checkpoint_every_steps``)
holds the method's state (buffers and extra state included), the optimiser, the
position (epoch, step within it), every process's RNG states, and the bad videos
seen. The data order is a function of ``(seed, epoch)`` and each sample's randomness
a function of ``(seed, epoch, index)`` (:mod:`vidssl.data.datasets`), so skipping the
batches already consumed replays the same batches.

A non-finite loss stops the run with :class:`NonFiniteLossError` before anything
is written, so the last good checkpoint stays.
"""
from __future__ import annotations

import inspect
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from vidssl import distributed as dist
from vidssl.config import Config, dump_config, to_dict
from vidssl.engine.checkpoint import (
    FORMAT,
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vidssl.engine.logging import MetricsLogger
from vidssl.engine.optim import build_optimizer, lr_at
from vidssl.errors import CheckpointError, ConfigError, NonFiniteLossError
from vidssl.methods.base import Progress

# keys that may change between an interrupted run and its resume without changing the result
_RESUME_FREE_KEYS = ("train.progress", "train.out", "train.name", "train.device", "data.workers", "description")


# buffers (memory banks, queues, BN statistics) stay per process: methods sync them themselves
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})


# channels-last-3d activations give 1x1x1-conv weights gradients whose strides differ from the
# parameter's only along size-1 dimensions: the same memory layout, so DDP's warning is noise
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def train(cfg: Config, run_dir: str | Path | None = None, resume: bool = True, *,
          dataset=None, method: nn.Module | None = None) -> Path:
    """Train ``cfg``'s method; returns the run directory.

    Args:
        cfg: a validated config.
        run_dir: where the run lives (default ``train.out / train.name``, or a name
            made of the method, backbone and time). A checkpoint there is resumed
            when ``resume``; with ``resume=False`` the run starts over.
        dataset: a dataset of ``(index, seed)`` keys to use instead of
            ``cfg.data.train`` (tests); ``method``: a prebuilt method (tests).
    """
    owns_group = not dist.is_initialized()
    rank, world = dist.init_distributed()
    try:
        return _train(cfg, run_dir, resume, dataset, method, rank, world)
    finally:
        if owns_group:
            dist.cleanup()


def _train(cfg, run_dir, resume, dataset, method, rank, world) -> Path:
    from vidssl.data.datasets import build_loader

    device = pick_device(cfg.train.device)
    if cfg.data.batch_size % world:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} is not divisible by the {world} processes")
    per_process = cfg.data.batch_size // world
    run_dir = Path(dist.broadcast_object(str(run_dir or default_run_dir(cfg))))
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    ckpt = _load_resume(ckpt_path, cfg, resume)
    if ckpt is not None and ckpt["epoch"] >= cfg.train.epochs:
        _say(f"run {run_dir} already finished ({ckpt['epoch']} of {cfg.train.epochs} epochs); nothing to do")
        return run_dir

    torch.manual_seed(cfg.train.seed)  # the same initial weights on every process
    dataset, num_samples, num_classes = _dataset(cfg, dataset)
    if method is None:
        from vidssl.methods import build_method

        method = build_method(cfg, num_samples=num_samples, num_classes=num_classes,
                              manifest=getattr(dataset, "manifest", None))
    method.to(device)
    if cfg.train.sync_bn and world > 1:
        if device.type == "cuda":
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        else:  # SyncBatchNorm has no CPU kernel
            _say("train.sync_bn ignored on the CPU: BatchNorm statistics stay per process")
    if ckpt is None and cfg.train.init_from:
        init_from(method, cfg.train.init_from, cfg)
    optimizer = build_optimizer(method, cfg.optim)
    batches = num_samples // cfg.data.batch_size  # the sampler drops the last partial global batch
    if batches == 0:
        raise ConfigError(f"the training set has {num_samples} videos, fewer than one batch "
                          f"(data.batch_size={cfg.data.batch_size})")
    steps_per_epoch = min(batches, cfg.train.max_steps_per_epoch or batches)
    if cfg.optim.warmup_epochs >= cfg.train.epochs:
        _say(f"warning: optim.warmup_epochs={cfg.optim.warmup_epochs} >= train.epochs={cfg.train.epochs}: "
             "the whole run is warm-up, at a learning rate near 0")
    progress = Progress(epoch=0, step=0, steps_per_epoch=steps_per_epoch, epochs=cfg.train.epochs)
    skip, bad_videos, elapsed_before = 0, set(), 0.0
    if ckpt is not None:
        method.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        progress.epoch, progress.step, skip = ckpt["epoch"], ckpt["step"], ckpt["epoch_step"]
        set_rng_state(ckpt["rng"][rank] if len(ckpt["rng"]) == world else ckpt["rng"][0])
        bad_videos, elapsed_before = set(ckpt["bad_videos"]), ckpt["elapsed"]
        _say(f"resuming {run_dir} at epoch {progress.epoch}, step {progress.step}")
    else:
        _seed_all(cfg.train.seed + rank)
    model = method
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None, **_NO_BUFFER_SYNC,
            # a method whose graph leaves some trainable parameters out sets this attribute to True
            find_unused_parameters=getattr(method, "find_unused_parameters", False))
    logger = None
    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ckpt_path.parent.glob(f".{ckpt_path.name}.*.tmp"):  # a write cut by a kill
            stale.unlink()
        dump_config(cfg, run_dir / "config.yaml")
        logger = MetricsLogger(run_dir, resume_step=progress.step if ckpt is not None else None)

    amp = device.type == "cuda" and cfg.train.amp
    start, clips_seen, epoch_losses, window = time.time(), 0, [], _Window()
    if ckpt is not None:  # the interrupted run's partial log window, so that metrics.jsonl reads as one run
        window.sums, window.n = dict(ckpt["log_window"]["sums"]), ckpt["log_window"]["n"]
    state = {"cfg": cfg, "method": method, "optimizer": optimizer, "path": ckpt_path, "bad": bad_videos,
             "window": window}
    model.train()
    method.on_train_start(progress)
    start_epoch = progress.epoch
    try:
        for epoch in range(start_epoch, cfg.train.epochs):
            progress.epoch = epoch
            first = skip if epoch == start_epoch else 0
            if first == 0:  # a mid-epoch resume restored what this hook did
                method.on_epoch_start(progress)
            loader = build_loader(dataset, per_process, shuffle=True, seed=cfg.train.seed, epoch=epoch, rank=rank,
                                  world=world, workers=cfg.data.workers, drop_last=True, skip_batches=first)
            with torch.random.fork_rng(devices=[]):  # iter() draws a seed; keep the global RNG untouched
                batches_it = iter(loader)
            bar = _bar(cfg, epoch, steps_per_epoch, first)
            epoch_losses = []
            for epoch_step in range(first, steps_per_epoch):
                batch = _to_device(next(batches_it), device)
                for lr_group in optimizer.param_groups:
                    lr_group["lr"] = lr_at(progress.step, progress.total_steps, steps_per_epoch, cfg.optim)
                method.progress = progress
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = model(batch)
                loss = float(dist.all_reduce_mean(out["loss"].detach().float()))
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"non-finite loss ({loss}) at step {progress.step} (epoch {epoch}); training stopped. "
                        + (f"The last good checkpoint is kept: {ckpt_path}" if ckpt_path.is_file()
                           else "No checkpoint was written yet."))
                optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                if cfg.train.grad_clip:
                    nn.utils.clip_grad_norm_(method.parameters(), cfg.train.grad_clip)
                optimizer.step()
                method.after_step(progress)
                progress.step += 1
                clips = _num_clips(batch) * world
                clips_seen += clips
                epoch_losses.append(loss)
                window.add(loss, clips, out.get("logs", {}))
                _report_bad(batch.get("bad_paths", ()), bad_videos, logger, progress.step)
                speed = clips_seen / max(time.time() - start, 1e-9)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.4f}", clips_s=f"{speed:.1f}")
                    bar.update(1)
                last_of_epoch = epoch_step + 1 == steps_per_epoch
                if logger and (progress.step % cfg.train.log_every == 0 or last_of_epoch):
                    logger.log(progress.step, {"epoch": epoch + (epoch_step + 1) / steps_per_epoch,
                                               "lr": optimizer.param_groups[0]["lr"], **window.pop()})
                every = cfg.train.checkpoint_every_steps
                if every > 0 and progress.step % every == 0 and not last_of_epoch:
                    _checkpoint(state, epoch, epoch_step + 1, progress.step, elapsed_before + time.time() - start)
            if bar is not None:
                bar.close()
            _checkpoint(state, epoch + 1, 0, progress.step, elapsed_before + time.time() - start)
            _say(f"epoch {epoch + 1}/{cfg.train.epochs}  loss {_mean(epoch_losses):.4f}  "
                 f"lr {optimizer.param_groups[0]['lr']:.4g}  {clips_seen / max(time.time() - start, 1e-9):.1f} clips/s")
    finally:
        if logger:
            logger.close()
    seconds = time.time() - start
    all_bad = _all_bad(bad_videos)
    if dist.is_main():
        summary = {"final_loss": _mean(epoch_losses), "steps": progress.step, "epochs": cfg.train.epochs,
                   "seconds": elapsed_before + seconds, "clips_per_s": clips_seen / max(seconds, 1e-9),
                   "bad_videos": len(all_bad), "bad_video_paths": all_bad, "world_size": world,
                   "device": str(device)}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run_dir


# ----------------------------------------------------------------------------- pieces


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when present (``cuda:LOCAL_RANK`` under DDP), else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but CUDA is not available (use train.device=auto or cpu)")
    return torch.device("cuda", torch.cuda.current_device())


def default_run_dir(cfg: Config, prefix: str | None = None) -> Path:
    """``train.out / train.name``, or ``train.out / PREFIX_YYYYmmdd-HHMMSS``."""
    name = cfg.train.name or f"{prefix or cfg.method_name + '_' + cfg.model.backbone}_{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.train.out) / name


def _load_resume(path: Path, cfg: Config, resume: bool) -> dict | None:
    if not path.is_file():
        return None
    if not resume:
        _say(f"{path} exists; starting over (it is replaced at the first checkpoint)")
        return None
    ckpt = load_checkpoint(path)
    check_compatible(ckpt, cfg, path)
    changed = _config_diff(ckpt["config"], to_dict(cfg))
    if changed:
        _say(f"warning: resuming with a changed config ({', '.join(changed[:8])}); the result will differ "
             "from an uninterrupted run")
    return ckpt


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + k
        if key in _RESUME_FREE_KEYS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def _dataset(cfg: Config, dataset):
    """(dataset, number of videos, number of classes) from the config or an injected dataset."""
    if dataset is None:
        from vidssl.data.datasets import VideoDataset
        from vidssl.data.builtin import open_manifest

        d = cfg.data
        manifest = open_manifest(d.train, format=d.format, root=d.root, split=d.split, label_column=d.label_column)
        dataset = VideoDataset(manifest, d, train=True)
        return dataset, len(manifest), len(manifest.classes)
    manifest = getattr(dataset, "manifest", None)
    classes = len(manifest.classes) if manifest is not None else getattr(dataset, "num_classes", 0)
    return dataset, len(dataset), classes


def init_from(method: nn.Module, path: str, cfg: Config) -> None:
    """Load the ``backbone.*`` weights (and any other key of matching name and shape) of a
    checkpoint of the same backbone, e.g. a pretrained encoder before supervised training."""
    ckpt = load_checkpoint(path)
    if ckpt.get("backbone") != cfg.model.backbone:
        raise CheckpointError(f"train.init_from={path} holds backbone {ckpt.get('backbone')!r}, "
                              f"this run uses {cfg.model.backbone!r}")
    own = method.state_dict()
    take = {k: v for k, v in ckpt["model"].items()
            if isinstance(v, torch.Tensor) and k in own and own[k].shape == v.shape}
    missing = [k for k, v in own.items() if k.startswith("backbone.") and isinstance(v, torch.Tensor) and k not in take]
    if missing:
        raise CheckpointError(f"train.init_from={path} does not fit this backbone (e.g. {missing[:3]} missing or "
                              "of another shape: check model.width and model.options)")
    method.load_state_dict(take, strict=False)
    _say(f"initialised {len(take)} of {len(own)} tensors from {path}")


def _checkpoint(state: dict, epoch: int, epoch_step: int, step: int, elapsed: float) -> None:
    """Every process contributes its RNG state; the main process writes."""
    rngs = dist.all_gather_object(rng_state())
    bad = _all_bad(state["bad"])
    if dist.is_main():
        cfg = state["cfg"]
        save_checkpoint(state["path"], {
            "format": FORMAT, "method": cfg.method_name, "backbone": cfg.model.backbone, "config": to_dict(cfg),
            "model": state["method"].state_dict(), "optimizer": state["optimizer"].state_dict(),
            "epoch": epoch, "epoch_step": epoch_step, "step": step, "rng": rngs, "bad_videos": bad,
            "elapsed": elapsed, "finished": epoch >= cfg.train.epochs,
            "log_window": {"sums": dict(state["window"].sums), "n": state["window"].n},
        })
    dist.barrier()


def _all_bad(local: set) -> list[str]:
    return sorted(set().union(*dist.all_gather_object(sorted(local))))


def _report_bad(paths, seen: set, logger, step: int) -> None:
    """Count each bad video once (the dataset already warned on the ``vidssl.data`` logger)."""
    for p in paths:
        if p not in seen:
            seen.add(p)
            if logger:
                logger.event(step, "bad_video", path=p)


class _Window:
    """Means of the loss and the method's logs since the last metrics line, and clips/s."""

    def __init__(self):
        self.sums, self.n, self.clips, self.t0 = {}, 0, 0, time.time()

    def add(self, loss: float, clips: int, logs: dict) -> None:
        for k, v in {"loss": loss, **logs}.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1
        self.clips += clips

    def pop(self) -> dict:
        now = time.time()
        out = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        out["clips_per_s"] = self.clips / max(now - self.t0, 1e-9)
        self.__init__()
        return out


def _bar(cfg: Config, epoch: int, total: int, initial: int):
    if not (cfg.train.progress and dist.is_main() and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False,
                dynamic_ncols=True)


def _to_device(x, device: torch.device):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _num_clips(batch: dict) -> int:
    """B x V of ``clips`` [B, V, C, T, H, W] (the first pathway of a two-rate list)."""
    clips = batch["clips"]
    c = clips[0] if isinstance(clips, (list, tuple)) else clips
    return int(c.shape[0] * c.shape[1]) if c.ndim >= 2 else int(c.shape[0])


def _seed_all(seed: int) -> None:
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _say(msg: str) -> None:
    if dist.is_main():
        print(f"vidssl: {msg}", file=sys.stderr, flush=True)
