"""The arithmetic of a training step: ``train.amp`` -> bf16, fp16 or fp32.

``train.amp`` takes ``true`` (the default), ``bf16``, ``fp16`` or ``false`` (``fp32`` is
the same as ``false``). On the CPU every run is float32, whatever the setting. On CUDA:

- ``bf16``: the forward under bf16 autocast; bf16 has float32's range, so no loss scaling.
- ``fp16``: the forward under fp16 autocast and a :class:`torch.amp.GradScaler`: the loss
  is multiplied by a scale before the backward so that small gradients survive fp16's
  range, the gradients are divided by it before clipping and the step, a step whose
  gradients overflowed is skipped and the scale halved (doubled after 2000 good steps).
  The scaler's state is part of the checkpoint. It reads one value back from the device
  per step (whether the gradients overflowed), which bf16 and fp32 do not.
- ``true``: bf16 where the GPU computes in it natively (Ampere and later:
  ``torch.cuda.is_bf16_supported(including_emulation=False)``), else fp16 (V100, T4).
"""
from __future__ import annotations

import torch

PRECISIONS = ("bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16() -> bool:
    """Whether the current CUDA device computes in bf16 natively."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation
        return torch.cuda.is_bf16_supported()


def resolve_precision(amp: bool | str, device_type: str) -> str:
    """``train.amp`` on a device of type ``device_type`` -> ``"bf16"``, ``"fp16"`` or ``"fp32"``."""
    if device_type != "cuda" or amp is False or amp == "fp32":
        return "fp32"
    if amp is True:
        return "bf16" if native_bf16() else "fp16"
    if amp not in _DTYPES:
        raise ValueError(f"train.amp: {amp!r} (allowed: true, false, bf16, fp16, fp32)")
    return amp


def autocast(device_type: str, amp: bool | str):
    """The forward's autocast context: ``amp`` a resolved precision, or ``True`` for bf16
    (``False`` / ``"fp32"``: off). Always off on the CPU, where runs stay float32."""
    precision = "bf16" if amp is True else ("fp32" if amp is False else amp)
    return torch.autocast(device_type, dtype=_DTYPES.get(precision, torch.bfloat16),
                          enabled=precision in _DTYPES and device_type == "cuda")


def grad_scaler(precision: str, device_type: str) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 on CUDA only; a disabled one passes the loss and the
    step through unchanged (and its state dict is empty)."""
    enabled = precision == "fp16" and device_type == "cuda"
    return torch.amp.GradScaler("cuda" if enabled else device_type, enabled=enabled)


def load_scaler_state(scaler: torch.amp.GradScaler, state: dict | None) -> bool:
    """Restore a checkpoint's scaler state; True when it was. A disabled scaler, or a
    checkpoint of a run in another precision (empty or no state), keeps the fresh one."""
    if not state or not scaler.is_enabled():
        return False
    scaler.load_state_dict(state)
    return True
