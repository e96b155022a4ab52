"""Methods: one file each. A method module defines ``Config`` (a dataclass of its
hyper-parameters, paper defaults) and ``Method`` (a :class:`~vidssl.methods.base.Method`).

The registry maps a method name to its module so that importing one method never
imports the others.
"""
from __future__ import annotations

import importlib

from vidssl.config import ConfigError

METHODS: dict[str, str] = {
    "supervised": "vidssl.methods.supervised",
    "ir": "vidssl.methods.ir",
    "la": "vidssl.methods.la",
    "moco": "vidssl.methods.moco",
    "simclr": "vidssl.methods.simclr",
    "byol": "vidssl.methods.byol",
    "swav": "vidssl.methods.swav",
}


def method_module(name: str):
    if name not in METHODS:
        raise ConfigError(f"bad value for 'method.name': {name!r} (allowed: {', '.join(sorted(METHODS))})")
    return importlib.import_module(METHODS[name])


def method_config_class(name: str) -> type:
    return method_module(name).Config


def build_method(cfg, num_samples: int, num_classes: int, manifest=None):
    """Build the method of ``cfg`` around a fresh backbone.

    Args:
        cfg: a validated :class:`vidssl.config.Config`.
        num_samples: videos in the training manifest (memory banks are [N, D]).
        num_classes: classes of the training manifest (0 when unlabelled).
        manifest: the training manifest (row i = batch index i), passed on to methods
            whose class sets ``takes_manifest = True`` (LA checks per-video feature
            files against it); None when the dataset has none (injected test datasets).
    """
    from vidssl.config import method_config
    from vidssl.models import build_backbone

    module = method_module(cfg.method_name)
    backbone = build_backbone(
        cfg.model.backbone, in_channels=in_channels(cfg.data.modality), width=cfg.model.width, **cfg.model.options
    )
    extra = {"manifest": manifest} if getattr(module.Method, "takes_manifest", False) else {}
    return module.Method(method_config(cfg), backbone, num_samples=num_samples, num_classes=num_classes, **extra)


def in_channels(modality: str) -> int:
    """Input channels of a modality: RGB 3; grayscale frame differences 3 (the difference
    image repeated, so that RGB and difference models share architectures and checkpoints);
    optical flow 2 (dx, dy)."""
    return {"rgb": 3, "diff": 3, "flow": 2}[modality]
