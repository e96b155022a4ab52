"""Stopping a run cleanly on SIGTERM or SIGUSR1 (SLURM's pre-emption and time-limit warnings).

SLURM sends SIGTERM to every process of a job it pre-empts or cancels (then SIGKILL
after the partition's grace time), and the signal asked for with ``--signal=USR1@120``
some time before the time limit. :class:`StopSignals`, installed by
:func:`vidssl.engine.trainer.train` around the training loop, turns either into a
request: the step in progress is finished, the checkpoint is written (``last.pt``, as
at any mid-epoch checkpoint) and the run raises :class:`~vidssl.errors.StopRequested`,
which the CLI turns into exit code ``128 + signal number`` (143 for SIGTERM, 138 for
SIGUSR1), the shell's convention for "ended by that signal". Running the same command
again resumes from that checkpoint.

Under DDP every process must stop after the same step (the checkpoint is collective):
the processes agree at the next metrics line (every ``train.log_every`` steps, where
they already exchange the loss), whichever of them saw the signal. One process stops
after the step in progress, without a collective.

DataLoader workers get SLURM's signals too; PyTorch's worker handler exits on a
SIGTERM that its parent did not send, and the main process would then fail on its next
batch before it could checkpoint. :func:`worker_init` makes a worker ignore the first
SIGTERM / SIGUSR1 (the main process decides and shuts the workers down itself); a
second SIGTERM, e.g. the parent's ``terminate()`` of a worker that hangs, ends it.
"""
from __future__ import annotations

import signal
import threading

import torch

from vidssl import distributed as dist

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """Context manager: while active, SIGTERM and SIGUSR1 set :attr:`received` (the first
    signal's number) instead of ending the process; the previous handlers come back on exit.

    Handlers can only be installed from the main thread; elsewhere (a run started from a
    thread) the signals keep their handlers and :attr:`received` stays None.
    """

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:  # runs between two bytecodes of the main thread
        if self.received is None:
            self.received = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():  # None: a handler not set from Python
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def agreed(self, device: torch.device | None = None) -> int | None:
        """The signal to stop for, the same on every process, or None. A collective under
        DDP (every process must call it at the same step); local in one process."""
        if dist.world_size() == 1:
            return self.received
        mine = torch.tensor([[float(self.received or 0)]], device=device)
        seen = [int(v) for v in dist.all_gather(mine).flatten().tolist() if v]
        return min(seen) if seen else None


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: ignore the first SIGTERM / SIGUSR1 (see the module's
    docstring); a later SIGTERM ends the worker."""

    def first(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the next one ends the worker

    signal.signal(signal.SIGTERM, first)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"

