"""Names -> the classes behind them, resolved lazily (a leaf module).

``method.name`` in a recipe picks a method; its class and its config schema (a
dataclass of the method's hyper-parameters, paper defaults) live together in one file
of :mod:`vidssl.methods`. The table below names them as ``module:Class`` strings, so
that :mod:`vidssl.config` can validate a recipe's ``method`` section without
importing the methods (and torch), and importing one method never imports the others.
"""
from __future__ import annotations

import importlib

from vidssl.errors import ConfigError

# name -> (module, method class, config class)
METHODS: dict[str, tuple[str, str, str]] = {
    "supervised": ("vidssl.methods.supervised", "Supervised", "SupervisedConfig"),
    "ir": ("vidssl.methods.ir", "InstanceRecognition", "InstanceRecognitionConfig"),
    "la": ("vidssl.methods.la", "LocalAggregation", "LocalAggregationConfig"),
    "moco": ("vidssl.methods.moco", "MoCo", "MoCoConfig"),
    "simclr": ("vidssl.methods.simclr", "SimCLR", "SimCLRConfig"),
    "byol": ("vidssl.methods.byol", "BYOL", "BYOLConfig"),
    "swav": ("vidssl.methods.swav", "SwAV", "SwAVConfig"),
    "cpc": ("vidssl.methods.cpc", "CPC", "CPCConfig"),
}


def _entry(name: str) -> tuple[str, str, str]:
    if name not in METHODS:
        raise ConfigError(f"bad value for 'method.name': {name!r} (allowed: {', '.join(sorted(METHODS))})")
    return METHODS[name]


def method_class(name: str) -> type:
    """The method class registered as ``name`` (e.g. ``"simclr"`` -> ``SimCLR``)."""
    module, cls, _ = _entry(name)
    return getattr(importlib.import_module(module), cls)


def method_config_class(name: str) -> type:
    """The config dataclass of method ``name`` (e.g. ``"simclr"`` -> ``SimCLRConfig``)."""
    module, _, cfg = _entry(name)
    return getattr(importlib.import_module(module), cfg)
