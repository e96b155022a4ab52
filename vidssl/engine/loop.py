"""One training step and one epoch, for every method (no method branches).

A step sets the learning rate, runs the forward under autocast (CUDA only: bf16, or fp16
with a GradScaler, :mod:`vidssl.engine.precision`), the backward, an optional gradient
clip, the optimiser step and ``method.after_step``. Nothing is read back from the device
inside a step (but fp16's overflow check): the loss and the logs go into a
:class:`~vidssl.engine.state.LogWindow`, read once per ``train.log_every`` steps,
where a non-finite loss stops the run (before any checkpoint can hold its weights).
A stop signal (:mod:`vidssl.engine.signals`) ends the epoch after the step in progress,
with a checkpoint, by :class:`~vidssl.errors.StopRequested`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn

from vidssl import distributed as dist
from vidssl.data.batch import num_clips, to_device
from vidssl.data.datasets import build_loader
from vidssl.engine import precision as _precision
from vidssl.engine.optim import lr_at
from vidssl.engine.signals import signal_name
from vidssl.engine.state import LogWindow, TrainState
from vidssl.errors import NonFiniteLossError, StopRequested
from vidssl.methods.base import Progress


@dataclass
class Run:
    """What one epoch needs: the config, the (DDP-wrapped) model, the method inside it, the
    optimiser, the device, the metrics logger (main process), and how to write a checkpoint."""

    cfg: Any
    model: nn.Module
    method: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    logger: Any
    checkpoint: Callable[[], None]
    describe_checkpoint: Callable[[], str]
    bar: Any = None
    precision: str = "fp32"  # resolved train.amp: "bf16", "fp16" or "fp32"
    scaler: Any = None  # torch.amp.GradScaler (enabled for fp16 only), or None
    stop: Any = None  # vidssl.engine.signals.StopSignals, or None
    checkpoint_path: Any = None  # where run.checkpoint() writes (named when a signal stops the run)


def autocast(device_type: str, amp: bool | str):
    """The forward's autocast on CUDA: bf16 for ``True`` / ``"bf16"``, fp16 for ``"fp16"``,
    off for ``False`` / ``"fp32"``; always off on the CPU, where runs stay float32."""
    return _precision.autocast(device_type, amp)


def train_step(model: nn.Module, method: nn.Module, batch: dict, optimizer: torch.optim.Optimizer,
               progress: Progress, lr: float, *, amp: bool | str = False, grad_clip: float | None = None,
               scaler: torch.amp.GradScaler | None = None) -> dict:
    """Forward, backward and optimiser step on one batch; returns the method's output.

    ``model`` is the method, or the DDP wrapper around it; ``amp``: the autocast of
    :func:`autocast` (CUDA); ``scaler``: fp16's loss scaling (None or disabled: none)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    method.progress = progress
    with autocast(next(method.parameters()).device.type, amp):
        out = model(batch)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None or not scaler.is_enabled():
        out["loss"].backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(method.parameters(), grad_clip)
        optimizer.step()
    else:
        scaler.scale(out["loss"]).backward()
        if grad_clip:  # clip the true gradients, not the scaled ones
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(method.parameters(), grad_clip)
        scaler.step(optimizer)  # skipped when a gradient overflowed
        scaler.update()
    method.after_step(progress)
    return out


def train_one_epoch(run: Run, batches, state: TrainState, progress: Progress, window: LogWindow) -> float:
    """Steps ``state.epoch_step .. steps_per_epoch - 1`` of epoch ``state.epoch`` over the
    iterator ``batches``; returns the epoch's mean loss."""
    cfg, steps = run.cfg, progress.steps_per_epoch
    epoch_loss = float("nan")
    for epoch_step in range(state.epoch_step, steps):
        batch = to_device(next(batches), run.device)
        lr = lr_at(progress.step, progress.total_steps, steps, cfg.optim) * state.lr_scale
        out = train_step(run.model, run.method, batch, run.optimizer, progress, lr, amp=run.precision,
                         grad_clip=cfg.train.grad_clip, scaler=run.scaler)
        window.add(out["loss"], out.get("logs", {}), progress.step, num_clips(batch["clips"]))
        progress.step += 1
        state.step, state.epoch_step = progress.step, epoch_step + 1
        _note_bad(batch.get("bad_paths", ()), state, run.logger)
        if run.bar is not None:
            run.bar.update(1)
        last = epoch_step + 1 == steps
        if last or progress.step % cfg.train.log_every == 0:
            means, bad, epoch_loss = window.pop()
            _stop_if_bad(bad, progress, run)
            if run.logger:
                run.logger.log(progress.step, {"epoch": state.epoch + (epoch_step + 1) / steps, "lr": lr, **means})
            if run.bar is not None:
                run.bar.set_postfix(loss=f"{means['loss']:.4f}", clips_s=f"{means['clips_per_s']:.1f}")
        every = cfg.train.checkpoint_every_steps
        # a stop signal: one process looks at every step, DDP processes agree at metrics lines
        signum = (run.stop.agreed(run.device) if run.stop is not None and not last
                  and (dist.world_size() == 1 or progress.step % cfg.train.log_every == 0) else None)
        if (every > 0 and progress.step % every == 0 or signum) and not last:
            state.log_sums, bad = window.host_sums()
            state.log_n = window.n
            _stop_if_bad(bad, progress, run)
            run.checkpoint()
        if signum:
            raise stop_requested(signum, state, run)
    state.log_sums, state.log_n = {}, 0
    return epoch_loss


def stop_requested(signum: int, state: TrainState, run: Run) -> StopRequested:
    """The exception of a run stopped by ``signum`` after its checkpoint."""
    where = (f"the end of epoch {state.epoch}" if state.epoch_step == 0
             else f"step {state.epoch_step} of epoch {state.epoch + 1}")
    return StopRequested(f"stopped by {signal_name(signum)} after step {state.step} ({where}); checkpoint written "
                         f"to {run.checkpoint_path}; the same command resumes the run", signum)


def _stop_if_bad(bad_step: int | None, progress: Progress, run: Run) -> None:
    if bad_step is not None:
        raise NonFiniteLossError(f"non-finite loss at step {bad_step} (epoch {bad_step // progress.steps_per_epoch}); "
                                 f"training stopped. {run.describe_checkpoint()}")


def _note_bad(paths, state: TrainState, logger) -> None:
    """Count each bad video once (the dataset already warned on the ``vidssl.data`` logger)."""
    for p in paths:
        if p not in state.bad_videos:
            state.bad_videos.add(p)
            if logger:
                logger.event(state.step, "bad_video", path=p)


@torch.no_grad()
def validation_top1(method: nn.Module, dataset, batch_size: int, workers: int, device: torch.device) -> float:
    """Video-level top-1 of ``method.predict`` (scores [B, K]) on a test-mode dataset; every
    process measures the whole set (the weights are the same on all of them)."""
    was_training = method.training
    method.eval()
    loader = build_loader(dataset, max(1, batch_size // max(1, getattr(dataset, "num_views", 1))), shuffle=False,
                          seed=0, workers=workers)
    hits, total = torch.zeros((), device=device), 0
    for batch in loader:
        batch = to_device(batch, device)
        hits += (method.predict(batch).argmax(1) == batch["label"]).sum()
        total += len(batch["label"])
    method.train(was_training)
    return float(hits) / max(total, 1)


def gather_bad_videos(state: TrainState) -> list[str]:
    return sorted(set().union(*dist.all_gather_object(sorted(state.bad_videos))))
