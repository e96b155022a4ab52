"""Resuming a run and starting one from another run's weights.

:func:`load_resume` finds the checkpoint of an interrupted run and checks that it
belongs to this config (same method and backbone; a changed key other than
:data:`RESUME_FREE_KEYS` is named in a warning, since the result will then differ from
an uninterrupted run). :func:`init_from` (``train.init_from``) loads the ``backbone.*``
weights of another run, e.g. a pretrained encoder before fine-tuning.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from vidssl.config import Config, to_dict
from vidssl.engine.checkpoint import check_compatible, load_checkpoint
from vidssl.engine.logging import say
from vidssl.errors import CheckpointError

# keys that may change between an interrupted run and its resume without changing the result
RESUME_FREE_KEYS = ("train.progress", "train.out", "train.name", "train.device", "data.workers", "description",
                    "model.compile", "train.keep_snapshots")


def load_resume(path: Path, cfg: Config, resume: bool) -> dict | None:
    """The checkpoint at ``path`` to resume from, or None (none there, or ``resume`` off)."""
    if not path.is_file():
        return None
    if not resume:
        say(f"{path} exists; starting over (it is replaced at the first checkpoint)")
        return None
    ckpt = load_checkpoint(path)
    check_compatible(ckpt, cfg, path)
    changed = config_diff(ckpt["config"], to_dict(cfg))
    if changed:
        say(f"warning: resuming with a changed config ({', '.join(changed[:8])}); the result will differ "
             "from an uninterrupted run")
    return ckpt


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts, except :data:`RESUME_FREE_KEYS`."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + k
        if key in RESUME_FREE_KEYS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def init_from(method: nn.Module, path: str, cfg: Config) -> None:
    """Load the ``backbone.*`` weights (and any other key of matching name and shape, unless
    ``train.init_backbone_only``) of a checkpoint of the same backbone, e.g. a pretrained
    encoder before supervised training."""
    ckpt = load_checkpoint(path)
    if ckpt.get("backbone") != cfg.model.backbone:
        raise CheckpointError(f"train.init_from={path} holds backbone {ckpt.get('backbone')!r}, "
                              f"this run uses {cfg.model.backbone!r}")
    own = method.state_dict()
    take = {k: v for k, v in ckpt["model"].items()
            if isinstance(v, torch.Tensor) and k in own and own[k].shape == v.shape
            and (k.startswith("backbone.") or not cfg.train.init_backbone_only)}
    missing = [k for k, v in own.items() if k.startswith("backbone.") and isinstance(v, torch.Tensor) and k not in take]
    if missing:
        raise CheckpointError(f"train.init_from={path} does not fit this backbone (e.g. {missing[:3]} missing or "
                              "of another shape: check model.width and model.options)")
    method.load_state_dict(take, strict=False)
    say(f"initialised {len(take)} of {len(own)} tensors from {path}")
