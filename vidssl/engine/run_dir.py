"""Where a run lives by default: a folder named after the recipe and the settings.

``vidssl pretrain RECIPE [key=value ...]`` without ``--run-dir`` (and without
``train.name``) trains in ``train.out / <recipe>-<key>``, where the key is the first
10 hex digits of a SHA-256 over the resolved settings that differ from the schema's
defaults (:func:`run_key`). The same recipe with the same overrides is therefore
always the same folder: running the command again, or a SLURM job requeued after a
pre-emption, finds ``checkpoints/last.pt`` there and resumes instead of starting over.

What goes into the key:

- every resolved value (recipe, ``base:`` recipes, overrides, method defaults) that
  differs from the default of its key; so a key added to the schema later, with a
  default, leaves existing run folders where they are;
- not the keys that leave the result alone (:data:`vidssl.engine.resume.RESUME_FREE_KEYS`:
  ``train.out``, ``train.name``, ``train.device``, ``data.workers``, ``train.progress``,
  ``model.compile``, ``train.keep_snapshots``, ``description``), so that a resume may change them.

Two spellings of one value (``optim.lr=0.1`` and ``optim.lr=1e-1``) give one key; a
recipe file edited between two runs gives another key, hence another folder.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vidssl.config import Config, to_dict
from vidssl.registry import method_config_class

KEY_DIGITS = 10  # 40 bits: a collision among a project's runs is out of reach


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (``model.options`` stays one value: its keys are free-form)."""
    out = {}
    for k, v in tree.items():
        key = prefix + str(k)
        if isinstance(v, dict) and key != "model.options":
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def default_settings(method_name: str) -> dict:
    """The flattened schema defaults, with the defaults of method ``method_name``."""
    defaults = to_dict(Config())
    defaults["method"] = {"name": "supervised",
                          **to_dict(method_config_class(method_name)())}
    return flatten(defaults)


def changed_settings(cfg: Config) -> dict:
    """``{dotted key: value}`` of the settings of ``cfg`` that differ from the defaults,
    without :data:`~vidssl.engine.resume.RESUME_FREE_KEYS`."""
    from vidssl.engine.resume import RESUME_FREE_KEYS

    defaults = default_settings(cfg.method_name)
    return {k: v for k, v in sorted(flatten(to_dict(cfg)).items())
            if k not in RESUME_FREE_KEYS and (k not in defaults or defaults[k] != v)}


def run_key(cfg: Config) -> str:
    """The short hash of :func:`changed_settings` (``KEY_DIGITS`` hex digits)."""
    text = json.dumps(changed_settings(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_DIGITS]


def default_run_dir(cfg: Config, prefix: str | None = None) -> Path:
    """``train.out / train.name``, else ``train.out / <prefix>-<run_key(cfg)>``; the prefix
    defaults to ``<method>_<backbone>`` (the CLI passes the recipe's name)."""
    if cfg.train.name:
        return Path(cfg.train.out) / cfg.train.name
    return Path(cfg.train.out) / f"{prefix or cfg.method_name + '_' + cfg.model.backbone}-{run_key(cfg)}"

