"""What a run must carry across a resume besides weights and optimiser state.

:class:`TrainState` is the position (epoch, step within it, optimiser steps), the
wall time spent, the bad videos seen, the metrics not yet logged, and the validation
record (best top-1 and its epoch, the plateau learning-rate scale, early stop).
:class:`LogWindow` accumulates the loss and the method's logs as tensors, so that the
training loop reads nothing back from the device between two metrics lines.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from vidssl import distributed as dist


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    epoch_step: int = 0  # steps done in the epoch in progress (0 at an epoch boundary)
    step: int = 0  # optimiser steps done over the whole run
    elapsed: float = 0.0  # seconds of training before this process started
    bad_videos: set = field(default_factory=set)
    log_sums: dict = field(default_factory=dict)  # means not yet logged, as sums over log_n steps
    log_n: int = 0
    best_val: float = -1.0  # best validation top-1 so far (-1: none yet)
    best_epoch: int = -1  # completed epochs at the best validation (-1: none yet)
    lr_scale: float = 1.0  # plateau schedule: gamma^(drops so far)
    plateau_wait: int = 0  # epochs since the validation last improved (plateau schedule)
    stopped: bool = False  # early stop

    def to_checkpoint(self) -> dict:
        """The entries of the checkpoint dict (see :mod:`vidssl.engine.checkpoint`)."""
        return {"epoch": self.epoch, "epoch_step": self.epoch_step, "step": self.step, "elapsed": self.elapsed,
                "bad_videos": sorted(self.bad_videos),
                "log_window": {"sums": dict(self.log_sums), "n": self.log_n},
                "validation": {"best_val": self.best_val, "best_epoch": self.best_epoch, "lr_scale": self.lr_scale,
                               "plateau_wait": self.plateau_wait, "stopped": self.stopped}}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "TrainState":
        val = ckpt.get("validation", {})
        return cls(epoch=ckpt["epoch"], epoch_step=ckpt["epoch_step"], step=ckpt["step"], elapsed=ckpt["elapsed"],
                   bad_videos=set(ckpt["bad_videos"]), log_sums=dict(ckpt["log_window"]["sums"]),
                   log_n=ckpt["log_window"]["n"], **val)

    def record_validation(self, top1: float) -> bool:
        """Note the validation top-1 after epoch ``self.epoch``; True when it is a new best
        (``plateau_wait`` counts the epochs since the last one)."""
        if top1 > self.best_val:
            self.best_val, self.best_epoch, self.plateau_wait = top1, self.epoch, 0
            return True
        self.plateau_wait += 1
        return False


class LogWindow:
    """Sums of the loss and the logs since the last metrics line, kept on the device.

    ``add`` is tensor arithmetic only. ``pop`` gathers the sums of every process in one
    collective and reads them to the host once: the loss means, the first step whose
    loss was not finite (on any process) and the epoch's running mean loss.
    """

    def __init__(self, sums: dict | None = None, n: int = 0):
        self.sums: dict = dict(sums or {})
        self.n, self.clips, self.t0 = n, 0, time.time()
        self.epoch_sum, self.epoch_n = 0.0, 0
        self.bad_step = None  # tensor: first step with a non-finite loss, -1 if none

    def start_epoch(self) -> None:
        self.epoch_sum, self.epoch_n = 0.0, 0

    def add(self, loss: torch.Tensor, logs: dict, step: int, clips: int) -> None:
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        if self.bad_step is None:
            self.bad_step = torch.full_like(loss, -1.0)
        self.bad_step = torch.where((self.bad_step < 0) & ~finite, torch.full_like(loss, float(step)), self.bad_step)
        for k, v in {"loss": loss, **logs}.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.epoch_sum = self.epoch_sum + loss
        self.n, self.epoch_n, self.clips = self.n + 1, self.epoch_n + 1, self.clips + clips

    def _vector(self, keys: list[str]) -> torch.Tensor:
        """[len(keys) + 2] on the loss's device: the sums, the first bad step, the epoch sum."""
        like = self.bad_step if self.bad_step is not None else torch.zeros(())
        bad = self.bad_step if self.bad_step is not None else torch.full_like(like, -1.0)
        vals = [self.sums[k] for k in keys] + [bad, self.epoch_sum]
        return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=like.device).reshape(()) for v in vals])

    def _gathered(self) -> tuple[dict, int | None, float]:
        """(sums averaged over processes, first non-finite step on any process or None, epoch
        sum averaged over processes): one all-gather and one host read."""
        keys = sorted(self.sums)
        table = dist.all_gather(self._vector(keys)[None]).tolist()  # [world, len(keys) + 2]
        world = len(table)
        sums = {k: sum(row[i] for row in table) / world for i, k in enumerate(keys)}
        bad_steps = [row[len(keys)] for row in table if row[len(keys)] >= 0]
        return sums, (int(min(bad_steps)) if bad_steps else None), sum(row[-1] for row in table) / world

    def pop(self) -> tuple[dict, int | None, float]:
        """(means since the last pop + ``clips_per_s``, first non-finite step or None, epoch mean loss)."""
        sums, bad, epoch_sum = self._gathered()
        means = {k: v / max(self.n, 1) for k, v in sums.items()}
        now = time.time()
        means["clips_per_s"] = self.clips * dist.world_size() / max(now - self.t0, 1e-9)
        epoch_mean = epoch_sum / max(self.epoch_n, 1)
        self.sums, self.n, self.clips, self.t0, self.bad_step = {}, 0, 0, now, None
        return means, bad, epoch_mean

    def host_sums(self) -> tuple[dict, int | None]:
        """(the pending sums as floats averaged over processes, first non-finite step or None),
        for a checkpoint written between two metrics lines."""
        sums, bad, _ = self._gathered()
        return sums, bad
