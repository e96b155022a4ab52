"""Data-parallel primitives: one process per device, started by ``torchrun`` or SLURM.

A leaf module: every layer of vidssl may import it, and it imports nothing of vidssl
but :mod:`vidssl.errors`.

Every helper works unchanged in a single process (it is then the identity), so the
methods call them without asking whether DDP is on.

- ``torchrun --nproc_per_node N -m vidssl pretrain ...`` sets ``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
- under ``srun`` (one task per device) the same are read from ``SLURM_PROCID``,
  ``SLURM_NTASKS``, ``SLURM_LOCALID`` and the first host of the job's node list.

The backend is NCCL when CUDA is present and gloo otherwise (CPU runs and tests).
"""
from __future__ import annotations

import os
import re
from typing import Any

import torch
import torch.distributed as dist

from vidssl.errors import ConfigError, DistributedError


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def _first_slurm_host(nodelist: str) -> str:
    """``"node[03-05,9],gpu1"`` -> ``"node03"`` (the rank-0 host of a SLURM node list)."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not m:
        raise DistributedError(f"cannot read the SLURM node list {nodelist!r}; set MASTER_ADDR")
    prefix, ranges = m.group(1), m.group(2)
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _env_from_slurm() -> bool:
    """Fill the torchrun variables from SLURM's (multi-task jobs only). True when done."""
    if "SLURM_PROCID" not in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) <= 1:
        return False
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    if "MASTER_ADDR" not in os.environ:
        nodes = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST")
        if not nodes:
            raise DistributedError("SLURM job without a node list: set MASTER_ADDR and MASTER_PORT")
        os.environ["MASTER_ADDR"] = _first_slurm_host(nodes)
    # a port derived from the job id, so that two jobs sharing a node do not collide
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
    return True


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by the environment; returns ``(rank, world_size)``.

    A no-op returning ``(0, 1)`` in a plain single process (no ``WORLD_SIZE`` > 1 and no
    multi-task SLURM job), and when the group is already initialised. Under CUDA each
    process takes the device ``cuda:LOCAL_RANK``.
    """
    if is_initialized():
        return rank(), world_size()
    under_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not under_torchrun and not _env_from_slurm():
        return 0, 1
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise DistributedError(f"WORLD_SIZE > 1 but {var} is not set (start the processes with torchrun)")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"), init_method="env://",
                            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    return rank(), world_size()


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when present (this process's device under DDP), else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but CUDA is not available (use train.device=auto or cpu)")
    return torch.device("cuda", torch.cuda.current_device())


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def all_gather(x: torch.Tensor) -> torch.Tensor:
    """[n, ...] on every process -> [world * n, ...], ordered by rank; no gradient.

    Every process must pass the same shape (DDP batches are equal).
    """
    if world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward returns to each process the gradient of its own slice,
    summed over processes: every process's loss depends on every slice, and DDP then
    averages parameter gradients, so the result is the gradient of the mean loss
    (as in SimCLR's global negatives)."""

    @staticmethod
    def forward(ctx, x):
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        stacked = torch.stack([g.contiguous() for g in grads])  # [world, n, ...]
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        return stacked[dist.get_rank()]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Like :func:`all_gather` but differentiable: [n, ...] -> [world * n, ...]."""
    if world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor | float) -> torch.Tensor | float:
    """The mean over processes of a tensor (a new tensor) or of a float (a float)."""
    if world_size() == 1:
        return x
    if isinstance(x, torch.Tensor):
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y / world_size()
    t = torch.tensor(float(x), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / world_size()).item()


def all_gather_object(obj: Any) -> list:
    """Any picklable object from every process -> list ordered by rank."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (e.g. the run directory it chose)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _collective_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo takes CPU tensors
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
