"""Speed settings of a training run that leave the weights and the maths alone.

- :func:`compile_backbones` (``model.compile: true``): every backbone of a method (``backbone``,
  and the momentum encoder ``backbone_m`` of MoCo / BYOL) is compiled in place with
  ``nn.Module.compile`` (``torch.compile`` of the module's call). The module tree stays the
  same, so the state dict keeps its keys (``backbone.*``, never ``backbone._orig_mod.*``):
  checkpoints of compiled and uncompiled runs are interchangeable, and a run may resume
  with the other setting. The first steps are slower (the compilation); on the CPU it
  takes minutes and needs a C++ compiler.
- :func:`channels_last_3d`: the 5-D weights of a module in the channels-last-3d layout.
  On CUDA a convolution then writes channels-last maps, which BatchNorm and ReLU keep,
  so the whole backbone runs in that layout (cuDNN's fast path for bf16 3D convs).
  It is a layout only: values, shapes and state-dict keys are unchanged.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from vidssl.errors import ConfigError

# keyword arguments of every torch.compile call made here (tests set {"backend": "eager"}
# to trace without the minutes of inductor's CPU code generation)
COMPILE_OPTIONS: dict = {}


def backbone_names(method: nn.Module) -> list[str]:
    """Names of the method's children that are backbones: ``backbone`` and ``backbone_*``."""
    return [name for name, _ in method.named_children() if name == "backbone" or name.startswith("backbone_")]


def compile_backbones(method: nn.Module, **options) -> list[str]:
    """Compile every backbone of ``method`` in place; returns their names.

    ``options`` (over :data:`COMPILE_OPTIONS`) go to ``torch.compile`` (``mode``,
    ``backend``, ``dynamic``...)."""
    if not hasattr(nn.Module, "compile"):
        raise ConfigError(f"model.compile=true needs torch >= 2.2 (this is torch {torch.__version__})")
    names = backbone_names(method)
    if not names:
        raise ConfigError(f"model.compile=true: {type(method).__name__} has no 'backbone' to compile")
    for name in names:
        getattr(method, name).compile(**{**COMPILE_OPTIONS, **options})
    return names


def is_compiled(module: nn.Module) -> bool:
    """Whether ``module`` was compiled in place (``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None


@torch.no_grad()
def channels_last_3d(module: nn.Module) -> nn.Module:
    """Put every 5-D parameter and buffer of ``module`` in the channels-last-3d layout
    (in place, the same tensor objects, so an optimiser built before keeps them);
    returns ``module``."""
    for t in [*module.parameters(), *module.buffers()]:
        if t.dim() == 5:
            t.data = t.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def is_channels_last_3d(module: nn.Module) -> bool:
    """Whether every 5-D parameter of ``module`` is channels-last-3d (True when it has none)."""
    return all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in module.parameters() if p.dim() == 5)
