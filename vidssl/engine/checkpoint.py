"""Checkpoints: atomic writes, safe loads, compatibility checks, RNG states.

A checkpoint is a dict (see docs/architecture.md)::

    {"format": "vidssl/1", "method": str, "backbone": str, "config": dict,
     "model": method state dict (buffers and extra state included),
     "optimizer": optimiser state dict, "scaler": fp16's GradScaler state ({} without one),
     "epoch": completed epochs,
     "epoch_step": steps done in the epoch in progress (0 at an epoch boundary),
     "step": optimiser steps done, "rng": [per-process RNG states],
     "bad_videos": [paths], "elapsed": seconds, "finished": bool,
     "log_window": {"sums": {name: float}, "n": steps} (metrics not yet logged)}

It holds only tensors, numbers, strings, lists and dicts, so that it loads with
``torch.load(weights_only=True)``: a checkpoint from elsewhere cannot run code.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from vidssl.errors import CheckpointError
from vidssl.fileio import atomic_write

FORMAT = "vidssl/1"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder,
    flushed to disk, then renamed over ``path`` — a crash leaves the old file whole."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path) -> dict:
    """Load a vidssl checkpoint on the CPU with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle error, or an object weights_only refuses
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or not a vidssl checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a vidssl checkpoint (format {found!r}, expected {FORMAT!r})")
    return ckpt


def check_compatible(ckpt: dict, cfg, path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint of another method or backbone than ``cfg``'s."""
    want = (cfg.method_name, cfg.model.backbone)
    have = (ckpt.get("method"), ckpt.get("backbone"))
    if want != have:
        raise CheckpointError(
            f"{path} was trained with method {have[0]!r} and backbone {have[1]!r}, but this run uses "
            f"method {want[0]!r} and backbone {want[1]!r}; use another run directory (or train.init_from "
            f"to start from its backbone weights)"
        )


# ----------------------------------------------------------------------------- RNG states


def rng_state() -> dict:
    """This process's RNG states as tensors and plain numbers (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    """Restore the states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
