"""``train(cfg)``: a run from a config, for every method (no method branches).

It builds the manifest, dataset, method, optimiser and schedule, then for every epoch
calls ``method.on_epoch_start`` and :func:`vidssl.engine.loop.train_one_epoch`, writes
the checkpoint, and, with a validation set (``data.val``, or ``val_dataset``) and a
method that can predict (the supervised one), measures the validation top-1: the best
epoch's weights go to ``checkpoints/best.pt``, the plateau schedule
(``optim.schedule=plateau``) lowers the learning rate when it stalls, and
``train.stop_patience`` stops early. The same code runs one CPU process, one GPU, or N
processes under ``torchrun`` (DDP). With ``model.compile`` the backbones are compiled in
place (:mod:`vidssl.engine.accel`), so checkpoints hold the same keys either way.

Resuming gives the same run: the checkpoint (``checkpoints/last.pt``, written
atomically at the end of every epoch and every ``train.checkpoint_every_steps``)
holds the method's state (buffers and extra state included), the optimiser, fp16's
loss scaler, the :class:`~vidssl.engine.state.TrainState` and every process's RNG
states. The data order is a function of ``(seed, epoch)`` and each sample's randomness
a function of ``(seed, epoch, index)`` (:mod:`vidssl.data.datasets`), so skipping the
batches already consumed replays the same batches. The default run directory is a
function of the recipe and the settings (:mod:`vidssl.engine.run_dir`), so the same
command finds its checkpoint again; SIGTERM and SIGUSR1 stop the run after the step in
progress with a checkpoint (:mod:`vidssl.engine.signals`); ``train.keep_snapshots``
keeps the checkpoints of past epochs (:mod:`vidssl.engine.snapshots`).

A non-finite loss stops the run with :class:`~vidssl.errors.NonFiniteLossError`
before anything is written, so the last good checkpoint stays.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from vidssl import distributed as dist
from vidssl.config import Config, dump_config, to_dict
from vidssl.data.builtin import open_manifest
from vidssl.data.datasets import VideoDataset, build_loader
from vidssl.engine.accel import compile_backbones
from vidssl.engine.checkpoint import FORMAT, rng_state, save_checkpoint, set_rng_state
from vidssl.engine.logging import MetricsLogger, say
from vidssl.engine.loop import Run, gather_bad_videos, stop_requested, train_one_epoch, validation_top1
from vidssl.engine.optim import build_optimizer
from vidssl.engine.precision import grad_scaler, load_scaler_state, resolve_precision
from vidssl.engine.resume import init_from, load_resume
from vidssl.engine.run_dir import default_run_dir
from vidssl.engine.signals import StopSignals, worker_init
from vidssl.engine.snapshots import write_snapshot
from vidssl.engine.state import LogWindow, TrainState
from vidssl.errors import ConfigError
from vidssl.methods import build_method
from vidssl.methods.base import Progress

# buffers (memory banks, queues, BN statistics) stay per process: methods sync them themselves
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})


# channels-last-3d activations give 1x1x1-conv weights gradients whose strides differ from the
# parameter's only along size-1 dimensions: the same memory layout, so DDP's warning is noise
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def train(cfg: Config, run_dir: str | Path | None = None, resume: bool = True, *,
          dataset=None, method: nn.Module | None = None, val_dataset=None) -> Path:
    """Train ``cfg``'s method; returns the run directory.

    Args:
        cfg: a validated config.
        run_dir: where the run lives (default ``train.out / train.name``, or
            ``train.out / <method>_<backbone>-<settings hash>``: :func:`default_run_dir`).
            A checkpoint there is resumed when ``resume``; with ``resume=False`` the run
            starts over.
        dataset: a dataset of ``(index, seed)`` keys to use instead of
            ``cfg.data.train``; ``val_dataset``: a test-mode dataset to use instead
            of ``cfg.data.val``; ``method``: a prebuilt method.
    """
    owns_group = not dist.is_initialized()
    rank, world = dist.init_distributed()
    try:
        return _train(cfg, run_dir, resume, dataset, method, val_dataset, rank, world)
    finally:
        if owns_group:
            dist.cleanup()


def _train(cfg, run_dir, resume, dataset, method, val_dataset, rank, world) -> Path:
    device = dist.pick_device(cfg.train.device)
    if cfg.data.batch_size % world:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} is not divisible by the {world} processes")
    run_dir = Path(dist.broadcast_object(str(run_dir or default_run_dir(cfg))))
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    ckpt = load_resume(ckpt_path, cfg, resume)
    if ckpt is not None and ckpt["finished"]:
        say(f"run {run_dir} already finished ({ckpt['epoch']} of {cfg.train.epochs} epochs); nothing to do")
        return run_dir
    check_inputs(cfg, dataset=dataset, val_dataset=val_dataset, init=ckpt is None)

    torch.manual_seed(cfg.train.seed)  # the same initial weights on every process
    dataset, num_samples, num_classes = _dataset(cfg, dataset)
    val_dataset = _val_dataset(cfg, val_dataset)
    if method is None:
        method = build_method(cfg, num_samples=num_samples, num_classes=num_classes,
                              manifest=getattr(dataset, "manifest", None))
    if val_dataset is None and (cfg.optim.schedule == "plateau" or cfg.train.stop_patience is not None):
        raise ConfigError("optim.schedule=plateau and train.stop_patience need a validation set: "
                          "data.val=MANIFEST (labelled)")
    if val_dataset is not None and not hasattr(method, "predict"):
        raise ConfigError(f"a validation set needs a method that predicts labels; {cfg.method_name!r} does not")
    if val_dataset is not None and getattr(getattr(method, "cfg", None), "multi_label", False):
        raise ConfigError("validation ranks epochs by top-1, which multi-label training has not: drop data.val")
    method.to(device)
    if cfg.train.sync_bn and world > 1:
        if device.type == "cuda":
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
        else:  # SyncBatchNorm has no CPU kernel
            say("train.sync_bn ignored on the CPU: BatchNorm statistics stay per process")
    if ckpt is None and cfg.train.init_from:
        init_from(method, cfg.train.init_from, cfg)
    if cfg.model.compile:  # in place: the state dict (checkpoints, init_from, resume) keeps its keys
        say(f"model.compile: compiling {', '.join(compile_backbones(method))} (the first steps are slower)")
    optimizer = build_optimizer(method, cfg.optim)
    precision = resolve_precision(cfg.train.amp, device.type)
    if cfg.train.amp is True and precision == "fp16":
        say("train.amp: this GPU has no native bf16; training in fp16 with loss scaling")
    scaler = grad_scaler(precision, device.type)
    batches = num_samples // cfg.data.batch_size  # the sampler drops the last partial global batch
    if batches == 0:
        raise ConfigError(f"the training set has {num_samples} videos, fewer than one batch "
                          f"(data.batch_size={cfg.data.batch_size})")
    steps_per_epoch = min(batches, cfg.train.max_steps_per_epoch or batches)
    if cfg.optim.warmup_epochs >= cfg.train.epochs:
        say(f"warning: optim.warmup_epochs={cfg.optim.warmup_epochs} >= train.epochs={cfg.train.epochs}: "
             "the whole run is warm-up, at a learning rate near 0")
    state = TrainState()
    if ckpt is not None:
        method.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        load_scaler_state(scaler, ckpt.get("scaler"))
        state = TrainState.from_checkpoint(ckpt)
        set_rng_state(ckpt["rng"][rank] if len(ckpt["rng"]) == world else ckpt["rng"][0])
        say(f"resuming {run_dir} at epoch {state.epoch}, step {state.step}")
    else:
        _seed_all(cfg.train.seed + rank)
    progress = Progress(epoch=state.epoch, step=state.step, steps_per_epoch=steps_per_epoch, epochs=cfg.train.epochs)
    model = method
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None, **_NO_BUFFER_SYNC,
            # a method whose graph leaves some trainable parameters out sets this attribute to True
            find_unused_parameters=getattr(method, "find_unused_parameters", False))
    logger = None
    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ckpt_path.parent.glob(".*.pt.*.tmp"):  # a write cut by a kill
            stale.unlink()
        dump_config(cfg, run_dir / "config.yaml")
        logger = MetricsLogger(run_dir, resume_step=state.step if ckpt is not None else None)

    start = time.time()
    run = Run(cfg, model, method, optimizer, device, logger,
              checkpoint=lambda path=ckpt_path: _checkpoint(path, cfg, method, optimizer, state, start, scaler),
              describe_checkpoint=lambda: (f"The last good checkpoint is kept: {ckpt_path}" if ckpt_path.is_file()
                                           else "No checkpoint was written yet."),
              precision=precision, scaler=scaler, checkpoint_path=ckpt_path)
    window = LogWindow(state.log_sums, state.log_n)  # an interrupted run's partial window: one metrics.jsonl
    model.train()
    method.on_train_start(progress)
    epoch_loss, start_step = float("nan"), state.step
    run.stop = StopSignals().__enter__()  # SIGTERM / SIGUSR1: checkpoint after the step, then stop
    try:
        while state.epoch < cfg.train.epochs and not state.stopped:
            progress.epoch = state.epoch
            if state.epoch_step == 0:  # a mid-epoch resume restored what this hook did
                method.on_epoch_start(progress)
            for message in method.pop_messages():
                say(message)
            loader = build_loader(dataset, cfg.data.batch_size // world, shuffle=True, seed=cfg.train.seed,
                                  epoch=state.epoch, rank=rank, world=world, workers=cfg.data.workers,
                                  drop_last=True, skip_batches=state.epoch_step, worker_init_fn=worker_init)
            with torch.random.fork_rng(devices=[]):  # iter() draws a seed; keep the global RNG untouched
                batches_it = iter(loader)
            run.bar = _bar(cfg, state.epoch, steps_per_epoch, state.epoch_step)
            window.start_epoch()
            epoch_loss = train_one_epoch(run, batches_it, state, progress, window)
            if run.bar is not None:
                run.bar.close()
            state.epoch, state.epoch_step = state.epoch + 1, 0
            val = None if val_dataset is None else _validate(run, val_dataset, state, ckpt_path.with_name("best.pt"))
            run.checkpoint()
            if dist.is_main():
                write_snapshot(ckpt_path, state.epoch, cfg.train.keep_snapshots)
            speed = (state.step - start_step) * cfg.data.batch_size / max(time.time() - start, 1e-9)
            say(f"epoch {state.epoch}/{cfg.train.epochs}  loss {epoch_loss:.4f}  "
                 f"lr {optimizer.param_groups[0]['lr']:.4g}  {speed:.1f} clips/s"
                 + (f"  val top1 {val:.3f} (best {state.best_val:.3f}, epoch {state.best_epoch})"
                    if val is not None else "")
                 + ("  early stop" if state.stopped else ""))
            signum = run.stop.agreed(device) if state.epoch < cfg.train.epochs and not state.stopped else None
            if signum:  # the epoch's checkpoint is written
                raise stop_requested(signum, state, run)
    finally:
        run.stop.__exit__(None, None, None)  # the previous handlers
        if logger:
            logger.close()
    seconds = time.time() - start
    all_bad = gather_bad_videos(state)
    if dist.is_main():
        summary = {"final_loss": epoch_loss, "steps": state.step, "epochs": cfg.train.epochs,
                   "epochs_run": state.epoch, "seconds": state.elapsed + seconds,
                   "clips_per_s": (state.step - start_step) * cfg.data.batch_size / max(seconds, 1e-9),
                   "train_videos": num_samples,
                   "bad_videos": len(all_bad), "bad_video_paths": all_bad, "world_size": world,
                   "device": str(device)}
        if val_dataset is not None:
            summary.update(best_val_top1=state.best_val, best_epoch=state.best_epoch)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return run_dir


def check_inputs(cfg: Config, *, dataset=None, val_dataset=None, init: bool = True) -> None:
    """Refuse, before any work (no rendering, no run directory), the inputs the config names
    that cannot serve: an empty ``data.train``, a manifest path that does not exist, and (with
    ``init``) a ``train.init_from`` that is not a vidssl checkpoint. Raises :class:`ConfigError`
    (or :class:`~vidssl.errors.CheckpointError` for a corrupt checkpoint)."""
    from vidssl.data.builtin import is_builtin
    from vidssl.engine.checkpoint import load_checkpoint

    specs = [("data.train", cfg.data.train)] if dataset is None else []
    if val_dataset is None and cfg.data.val:
        specs.append(("data.val", cfg.data.val))
    for key, spec in specs:
        if not str(spec).strip():
            raise ConfigError(f"'{key}' is empty: training needs {key}=MANIFEST (a CSV, a split folder, a folder "
                              "of videos, or builtin:train)")
        if not is_builtin(spec) and not Path(spec).expanduser().exists():
            raise ConfigError(f"{key}={spec}: no such file or folder")
    if init and cfg.train.init_from:
        if not Path(cfg.train.init_from).expanduser().is_file():
            raise ConfigError(f"train.init_from={cfg.train.init_from}: no such checkpoint file")
        load_checkpoint(Path(cfg.train.init_from).expanduser())  # corrupt or foreign: CheckpointError


def _dataset(cfg: Config, dataset):
    """(dataset, number of videos, number of classes) from the config or an injected dataset."""
    if dataset is None:
        d = cfg.data
        manifest = open_manifest(d.train, format=d.format, root=d.root, split=d.split, label_column=d.label_column)
        if d.subset is not None:  # pretraining-data scale: part of the manifest (recorded in config.yaml)
            manifest = manifest.random_subset(d.subset, d.subset_seed)
        if d.bins > 1:  # video bins: each part of a video is a training video of its own
            manifest = manifest.binned(d.bins)
        dataset = VideoDataset(manifest, d, train=True)
        return dataset, len(manifest), manifest.num_classes
    manifest = getattr(dataset, "manifest", None)
    classes = manifest.num_classes if manifest is not None else getattr(dataset, "num_classes", 0)
    return dataset, len(dataset), classes


def _val_dataset(cfg: Config, dataset):
    """The validation set: ``dataset`` if given, else ``data.val`` (one centre clip per video), else None."""
    if dataset is not None or not cfg.data.val:
        return dataset
    d = cfg.data
    manifest = open_manifest(d.val, format=d.format, root=d.root, split=d.split, subset="test",
                             label_column=d.label_column)
    return VideoDataset(manifest, dataclasses.replace(d, test_clips=1, test_crops=1), train=False)


def _checkpoint(path: Path, cfg: Config, method: nn.Module, optimizer, state: TrainState, start: float,
                scaler=None) -> None:
    """Every process contributes its RNG state; the main process writes."""
    rngs = dist.all_gather_object(rng_state())
    bad = gather_bad_videos(state)
    if dist.is_main():
        save_checkpoint(path, {
            "format": FORMAT, "method": cfg.method_name, "backbone": cfg.model.backbone, "config": to_dict(cfg),
            "model": method.state_dict(), "optimizer": optimizer.state_dict(), "rng": rngs,
            "scaler": scaler.state_dict() if scaler is not None else {},
            **state.to_checkpoint(), "bad_videos": bad, "elapsed": state.elapsed + time.time() - start,
            "finished": state.epoch >= cfg.train.epochs or state.stopped,
        })
    dist.barrier()


def _validate(run: Run, dataset, state: TrainState, best_path: Path) -> float:
    """Validation top-1 after an epoch (returned): best weights kept, plateau drops, early stop."""
    cfg = run.cfg
    top1 = validation_top1(run.method, dataset, cfg.eval.batch_size, cfg.data.workers, run.device)
    improved = state.record_validation(top1)
    if cfg.optim.schedule == "plateau" and state.plateau_wait > cfg.optim.plateau_patience:
        state.lr_scale, state.plateau_wait = state.lr_scale * cfg.optim.gamma, 0
    patience = cfg.train.stop_patience
    state.stopped = patience is not None and state.epoch - state.best_epoch >= patience
    if run.logger:
        run.logger.log(state.step, {"epoch": state.epoch, "val_top1": top1, "val_best_top1": state.best_val},
                       prefix="val")
    if improved and dist.is_main():
        save_checkpoint(best_path, {"format": FORMAT, "method": cfg.method_name, "backbone": cfg.model.backbone,
                                    "config": to_dict(cfg), "model": run.method.state_dict(), "epoch": state.epoch,
                                    "val_top1": top1, "finished": True})
    return top1


def _bar(cfg: Config, epoch: int, total: int, initial: int):
    if not (cfg.train.progress and dist.is_main() and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False,
                dynamic_ncols=True)


def _seed_all(seed: int) -> None:
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


