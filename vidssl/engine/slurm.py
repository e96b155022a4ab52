"""A training command as a SLURM job that survives pre-emption (``vidssl submit``).

The job runs ``python -m vidssl COMMAND ...`` in each of its ``nodes x gpus_per_node``
tasks, one per GPU; :func:`vidssl.distributed.init_distributed` forms the process group
from SLURM's variables (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, the first
host of the node list). Shortly before the time limit SLURM sends SIGUSR1
(``--signal=USR1@signal_delay_s``); on pre-emption it sends SIGTERM. vidssl then
checkpoints after the step in progress and exits (:mod:`vidssl.engine.signals`), the
job is requeued, and the requeued job runs the same command, whose default run folder
is the same (:mod:`vidssl.engine.run_dir`): it resumes.

Two ways to submit the same job:

- :func:`submit`, through submitit (an optional dependency, ``pip install submitit``):
  each task runs :class:`SubmittedCommand`, which starts the command as a child process;
  submitit's SIGUSR1 handler (first task) calls its ``checkpoint`` method, which waits
  for the child to write its checkpoint and exit, then submitit requeues the job.
- :func:`sbatch_script`, a batch script for ``sbatch`` (what ``vidssl submit --dry-run``
  prints; submitit is not needed): the warning goes to the batch shell
  (``--signal=B:USR1@...``), which passes it on to the tasks, waits for them, and requeues.
"""
from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidssl.errors import ConfigError, RunError

# how long the checkpoint method waits for the command to checkpoint and exit (SLURM's
# warning comes signal_delay_s before the end; the rest is left for the requeue)
CHECKPOINT_WAIT_S = 600


@dataclass
class SlurmJob:
    """The resources of a job. ``time_min``: the time limit in minutes; ``extra``: more
    sbatch options as ``KEY=VALUE`` (``qos=high``, ``constraint=a100``)."""

    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    time_min: int = 24 * 60
    partition: str | None = None
    account: str | None = None
    mem_gb: int | None = None
    signal_delay_s: int = 120
    name: str = "vidssl"
    extra: list[str] = field(default_factory=list)

    def __post_init__(self):
        for key in ("nodes", "gpus_per_node", "cpus_per_task", "time_min", "signal_delay_s"):
            if getattr(self, key) < (0 if key == "gpus_per_node" else 1):
                raise ConfigError(f"--{key.replace('_', '-')} must be >= {0 if key == 'gpus_per_node' else 1} "
                                  f"(got {getattr(self, key)})")
        if self.signal_delay_s >= self.time_min * 60:
            raise ConfigError(f"--signal-delay {self.signal_delay_s} s is not shorter than the time limit "
                              f"({self.time_min} min)")
        for item in self.extra:
            if "=" not in item or item.startswith("-"):
                raise ConfigError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. qos=high")

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)  # one task per GPU; one task on a CPU-only node


def check_command(argv: list[str]) -> list[str]:
    """``argv`` = a training command and its arguments (``pretrain RECIPE key=value ...``)."""
    if not argv or argv[0] not in ("pretrain", "train-supervised"):
        raise ConfigError("vidssl submit runs a training command: vidssl submit [options] -- pretrain RECIPE "
                          f"[key=value ...] (got {' '.join(argv) or 'nothing'})")
    return list(argv)


def task_command(argv: list[str], python: str | None = None) -> list[str]:
    """What every task runs: ``python -m vidssl ARGV``."""
    return [python or sys.executable, "-m", "vidssl", *check_command(argv)]


def sbatch_options(job: SlurmJob, folder: str | Path) -> list[str]:
    """The ``#SBATCH`` options of :func:`sbatch_script` (without the ``--``)."""
    opts = [f"job-name={job.name}", f"nodes={job.nodes}", f"ntasks-per-node={job.tasks_per_node}"]
    if job.gpus_per_node:
        opts.append(f"gpus-per-node={job.gpus_per_node}")
    opts += [f"cpus-per-task={job.cpus_per_task}", f"time={job.time_min}"]
    opts += [f"{k}={v}" for k, v in (("partition", job.partition), ("account", job.account)) if v]
    if job.mem_gb:
        opts.append(f"mem={job.mem_gb}G")
    opts += [f"signal=B:USR1@{job.signal_delay_s}", "requeue", "open-mode=append",
             f"output={Path(folder) / '%j.out'}", *job.extra]
    return opts


def sbatch_script(job: SlurmJob, argv: list[str], folder: str | Path = "runs/slurm",
                  python: str | None = None, note: str | None = None) -> str:
    """A batch script that runs ``argv`` as :class:`SlurmJob` ``job`` and requeues itself on
    the time-limit warning (SIGTERM of a pre-emption reaches the tasks directly); ``note``:
    a comment line after the options."""
    command = " ".join(shlex.quote(a) for a in task_command(argv, python))
    lines = ["#!/bin/bash", *(f"#SBATCH --{o}" for o in sbatch_options(job, folder)),
             *([f"# {note}"] if note else []),
             "# SIGUSR1 before the time limit reaches this shell (B:): pass it on to the tasks, which",
             "# checkpoint and exit, then requeue; the requeued job runs the same command and resumes.",
             "requeue() {",
             '    kill -USR1 "$step" 2>/dev/null',
             '    wait "$step"',
             '    scontrol requeue "$SLURM_JOB_ID"',
             "}",
             "trap requeue USR1",
             f"srun --kill-on-bad-exit=1 {command} &",
             "step=$!",
             'wait "$step"']
    return "\n".join(lines) + "\n"


def executor_parameters(job: SlurmJob) -> dict:
    """The keyword arguments of submitit's ``AutoExecutor.update_parameters`` for ``job``."""
    params = {"name": job.name, "nodes": job.nodes, "tasks_per_node": job.tasks_per_node,
              "gpus_per_node": job.gpus_per_node, "cpus_per_task": job.cpus_per_task, "timeout_min": job.time_min,
              "slurm_signal_delay_s": job.signal_delay_s}
    if job.partition:
        params["slurm_partition"] = job.partition
    if job.account:
        params["slurm_account"] = job.account
    if job.mem_gb:
        params["mem_gb"] = job.mem_gb
    if job.extra:
        params["slurm_additional_parameters"] = dict(item.split("=", 1) for item in job.extra)
    return params


class SubmittedCommand:
    """What a submitit task runs: the command as a child process (its own signal handling,
    CUDA and process group), with submitit's ``checkpoint`` hook to requeue the job."""

    def __init__(self, argv: list[str], python: str | None = None):
        self.argv, self.python = check_command(argv), python or sys.executable
        self.proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict:  # submitit pickles the callable; a process does not travel
        return {"argv": self.argv, "python": self.python, "proc": None}

    def __call__(self) -> int:
        self.proc = subprocess.Popen(task_command(self.argv, self.python))
        # poll rather than wait(): the checkpoint hook runs in a signal handler of this thread
        # and must be able to wait for the same process
        while (code := self.proc.poll()) is None:
            time.sleep(1)
        if code != 0:
            raise RunError(f"vidssl {' '.join(self.argv)} exited with code {code}")
        return code

    def checkpoint(self, *args, **kwargs):
        """submitit's hook on SIGUSR1: let the command checkpoint and exit, then hand submitit
        the same command for the requeued job."""
        import submitit

        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)  # SLURM signalled it too; one signal or two is the same
            deadline = time.time() + CHECKPOINT_WAIT_S
            while proc.poll() is None and time.time() < deadline:
                time.sleep(1)
        return submitit.helpers.DelayedSubmission(SubmittedCommand(self.argv, self.python))


def submit(job: SlurmJob, argv: list[str], folder: str | Path = "runs/slurm") -> str:
    """Submit ``argv`` as ``job`` through submitit (logs in ``folder``); returns the job id."""
    argv = check_command(argv)
    try:
        import submitit
    except ImportError:
        raise RunError("vidssl submit needs submitit (pip install submitit), or use --dry-run to print a batch "
                       "script for sbatch") from None
    executor = submitit.AutoExecutor(folder=str(folder))
    executor.update_parameters(**executor_parameters(job))
    return str(executor.submit(SubmittedCommand(argv)).job_id)
