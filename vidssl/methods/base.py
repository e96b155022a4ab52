"""The contract between a method and the engine.

A method is an ``nn.Module`` that owns its encoders, heads, banks and queues and
computes its loss from a batch::

    batch = {"clips": (float [B, V, C, T, H, W], ...), "index": long [B], "label": long [B]}
    out = method(batch)          # {"loss": scalar tensor, "logs": {name: 0-dim tensor or float}}

``clips`` is a tuple of pathways (:mod:`vidssl.data.batch`); the backbone takes them as
arguments, ``self.backbone(*pathways)``. Logs stay on the device (detached tensors): the
engine reads them, with the loss, once per ``train.log_every`` steps.

The engine calls only these, by name, with no method-specific branches:

- ``on_train_start(progress)`` once, after a resume has restored the state;
- ``on_epoch_start(progress)`` before the first step of every epoch (LA re-clusters);
- ``after_step(progress)`` after every optimiser step (momentum encoders, memory banks).

``self.progress`` is set by the engine before every forward, so a method can read
the epoch and iteration (e.g. SwAV freezes its prototypes during the first epoch).
Every piece of state that must survive a resume lives in ``state_dict()``: tensors
as buffers or parameters, anything else through ``get_extra_state``.

``self.backbone`` is the encoder that evaluation reads: its weights are the
``backbone.*`` keys of the method's state dict.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn


@dataclass
class Progress:
    """Where training is. ``step`` counts optimiser steps from 0 over the whole run."""

    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 1
    epochs: int = 1

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def fraction(self) -> float:
        """k / K: the share of training done, in [0, 1]."""
        return min(1.0, self.step / max(1, self.total_steps))


class Method(nn.Module):
    """Base class: subclasses set ``self.backbone`` and implement ``forward``."""

    backbone: nn.Module

    def __init__(self):
        super().__init__()
        self.progress = Progress()
        self._messages: list[str] = []

    def report(self, message: str) -> None:
        """Queue a one-line message for the run's log (the engine prints it after the hook
        that raised it; the method layer has no logger of its own)."""
        self._messages.append(message)

    def pop_messages(self) -> list[str]:
        """The queued messages, oldest first; the queue is emptied."""
        out, self._messages = self._messages, []
        return out

    def on_train_start(self, progress: Progress) -> None:
        """Called once before the first step (after resume)."""

    def on_epoch_start(self, progress: Progress) -> None:
        """Called before the first step of every epoch."""

    def after_step(self, progress: Progress) -> None:
        """Called after every optimiser step."""
