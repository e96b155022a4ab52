"""Backbone weights in and out of vidssl checkpoints (``vidssl weights import|export``).

The formats:

- ``torchvision``: the state dict of torchvision's ``r3d_18`` / ``r2plus1d_18``
  (:mod:`vidssl.models.convert`), read from a ``.pth`` / ``.pt`` file
  (``torch.load(weights_only=True)``) or a ``.safetensors`` file, written as ``.pth``
  without the classifier ``fc.*``;
- ``safetensors``: the backbone's own state dict (vidssl key names, weights only), with
  the run's config as JSON in the file's metadata, so that importing it gives back a
  checkpoint of the same network and test-time preprocessing;
- ``pyslowfast``, ``pytorchvideo``, ``mmaction2``: ``slow_r50`` (and, but for MMAction2,
  ``slowfast_r50``) in those libraries' layouts (:mod:`vidssl.models.layouts`), read from
  their checkpoints (``model_state`` / ``state_dict`` inside, ``module.`` prefixes) and
  written as they load them, without the classifier head.

An imported checkpoint is a vidssl checkpoint (:mod:`vidssl.engine.checkpoint`) of the
supervised method holding only ``backbone.*`` weights, ``epoch`` 0 and ``finished``; every
``vidssl eval`` protocol loads it. torchvision imports get torchvision's test-time
preprocessing (:data:`TORCHVISION_DATA`), the other libraries' imports theirs
(:mod:`vidssl.engine.weight_presets`); ``key=value`` overrides change it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from vidssl.config import apply_overrides, build_config, in_channels, to_dict
from vidssl.engine.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from vidssl.errors import WeightsError
from vidssl.fileio import atomic_write, atomic_write_bytes
from vidssl.engine.weight_presets import data_preset
from vidssl.models import convert, layouts

FORMATS = ("torchvision", "safetensors", *layouts.LAYOUTS)
SAFETENSORS_KIND = "vidssl-backbone/1"  # metadata "format" of the files export writes
# torchvision's test-time input for its Kinetics weights: the VideoClassification preset (resize to
# 128 x 171, centre crop 112, its mean and std) and the documented evaluation (clip_len=16,
# frame_rate=15, clips_per_video=5)
TORCHVISION_DATA = {"modality": "rgb", "num_frames": 16, "stride": 1, "fps": 15.0, "crop_size": 112,
                    "test_short_side": 128, "test_clips": 5, "test_crops": 1,
                    "augment": {"mean": [0.43216, 0.394666, 0.37645], "std": [0.22803, 0.22145, 0.216989]}}


def read_state_dict(path: str | Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a ``.safetensors`` file or of a ``.pth`` / ``.pt`` state dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"cannot read {path} as safetensors ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle that weights_only refuses, a truncated file
        first = str(e).splitlines()[0] if str(e) else ""
        # training checkpoints of PySlowFast / MMAction2 may pickle Python objects besides tensors
        hint = ("; if it is a training checkpoint holding other Python objects, save its state dict alone "
                "where you trust the file: torch.save(torch.load(f, weights_only=False)['state_dict'], 'sd.pth') "
                "(or ['model_state'])") if "weights_only" in str(e) or "Unsupported global" in str(e) else ""
        raise WeightsError(f"cannot read {path} as a state dict ({type(e).__name__}: {first}){hint}") from None
    if isinstance(state, dict) and state.get("format") == FORMAT:
        raise WeightsError(f"{path} is already a vidssl checkpoint; `vidssl eval` takes it as it is")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state dict (names -> tensors)")
    return state, {}


def write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` (contiguous copies, CPU) and string ``metadata`` to ``path`` atomically."""
    from safetensors.torch import save

    data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(data, metadata=metadata))


def import_weights(src: str | Path, fmt: str, out: str | Path, backbone: str | None = None,
                   overrides: list[str] = (), allow_different: bool = False) -> dict:
    """Convert the weights in ``src`` (``fmt`` one of :data:`FORMATS`) to the vidssl checkpoint
    ``out``; returns a summary (backbone, width, options, tensors, dropped keys, notes, data)."""
    _check_format(fmt)
    state, metadata = read_state_dict(src)
    if fmt == "torchvision":
        cfg, weights, info = _torchvision_weights(src, state, backbone, overrides, allow_different)
    elif fmt == "safetensors":
        cfg, weights, info = _safetensors_weights(src, state, metadata, backbone, overrides)
    else:
        cfg, weights, info = _layout_weights(src, fmt, state, backbone, overrides)
    save_checkpoint(out, {
        "format": FORMAT, "method": cfg.method_name, "backbone": cfg.model.backbone, "config": to_dict(cfg),
        "model": {f"backbone.{k}": v for k, v in weights.items()}, "epoch": 0, "finished": True,
        "imported": {"source": str(src), "format": fmt, "dropped": sorted(info["dropped"])},
    })
    shown = ("modality", "num_frames", "stride", "fps", "crop_size", "test_short_side", "test_clips", "test_crops",
             "sampler", "fast_alpha")
    return {"out": str(out), "backbone": cfg.model.backbone, "width": cfg.model.width,
            "options": dict(cfg.model.options), "tensors": len(weights), "dropped": info["dropped"],
            "notes": info["notes"], "read": info.get("read", []), "data": {k: getattr(cfg.data, k) for k in shown}}


def _torchvision_weights(src, state: dict, backbone: str | None, overrides, allow_different: bool):
    """(config, backbone state dict, info) of a torchvision state dict; the width and input
    channels come from the weights, the preprocessing from :data:`TORCHVISION_DATA` + overrides."""
    if backbone is None:
        raise WeightsError("--backbone is needed with --format torchvision (r3d18 or r2plus1d18)")
    convert.check_convertible(backbone)
    width, channels = convert.torchvision_sizes(backbone, state)
    cfg = _config({"model": {"backbone": backbone, "width": width, "options": {"stem_pool": False}},
                   "data": copy.deepcopy(TORCHVISION_DATA)}, overrides, src)
    if (cfg.model.width, in_channels(cfg.data.modality)) != (width, channels):
        raise WeightsError(f"{src} holds a network of width {width} on {channels} input channels; the overrides "
                           f"ask for width {cfg.model.width} on {in_channels(cfg.data.modality)} "
                           f"(data.modality={cfg.data.modality})")
    weights, info = convert.from_torchvision(cfg.model.backbone, state, options=cfg.model.options,
                                             allow_different=allow_different)
    return cfg, weights, info


def _layout_weights(src, fmt: str, raw: dict, backbone: str | None, overrides):
    """(config, backbone state dict, info) of a PySlowFast / PyTorchVideo / MMAction2 file: the width,
    input channels and SlowFast options from the weights, the preprocessing from the format's preset
    (:mod:`vidssl.engine.weight_presets`) + overrides; ``backbone`` None: read from the keys."""
    state, unwrap_notes = layouts.unwrap(fmt, raw)
    backbone = backbone or layouts.guess_backbone(fmt, state)
    layouts.check_convertible(fmt, backbone)
    width, channels, read = layouts.read_sizes(fmt, backbone, state)
    cfg = _config({"model": {"backbone": backbone, "width": width, "options": dict(read)},
                   "data": data_preset(fmt, backbone)}, overrides, src)
    if (cfg.model.width, in_channels(cfg.data.modality)) != (width, channels):
        raise WeightsError(f"{src} holds a network of width {width} on {channels} input channels; the overrides "
                           f"ask for width {cfg.model.width} on {in_channels(cfg.data.modality)} "
                           f"(data.modality={cfg.data.modality})")
    changed = {k: (v, cfg.model.options.get(k)) for k, v in read.items() if cfg.model.options.get(k) != v}
    if changed:
        shown = ", ".join(f"{k}={v} in the weights, {w} asked" for k, (v, w) in changed.items())
        raise WeightsError(f"{src}: the overrides contradict the weights ({shown})")
    if cfg.data.sampler == "two_rate":
        alpha = cfg.model.options.get("alpha", 4)
        if cfg.data.fast_alpha != alpha:  # the lateral's temporal stride and the sampler's frame ratio
            raise WeightsError(f"model.options.alpha={alpha} needs data.fast_alpha={alpha} (the Fast pathway "
                               f"samples alpha times the Slow frames), got data.fast_alpha={cfg.data.fast_alpha}")
    weights, info = layouts.from_layout(fmt, backbone, state, options=cfg.model.options)
    info["read"] = unwrap_notes
    return cfg, weights, info


def _safetensors_weights(src, state: dict, metadata: dict, backbone: str | None, overrides):
    """(config, backbone state dict, info) of a file written by ``export --format safetensors``."""
    raw = _safetensors_config(metadata, src)
    if backbone is not None and backbone != raw["model"]["backbone"]:
        raise WeightsError(f"{src} holds backbone {raw['model']['backbone']!r}, not {backbone!r}")
    cfg = _config(raw, overrides, src)
    m = cfg.model
    shapes = convert.reference_shapes(m.backbone, m.width, in_channels(cfg.data.modality), m.options)
    convert.check_state(state, shapes, f"{src} does not fit backbone {m.backbone!r} at width {m.width}")
    weights = {k: state[k] for k in shapes}  # the backbone's order (a safetensors file sorts its keys)
    return cfg, weights, {"width": cfg.model.width, "dropped": {}, "notes": []}


def export_weights(checkpoint: str | Path, fmt: str, out: str | Path, allow_different: bool = False) -> dict:
    """Write the backbone of the vidssl ``checkpoint`` to ``out`` in ``fmt``; returns a summary
    (backbone, width, tensors, notes)."""
    _check_format(fmt)
    ckpt = load_checkpoint(checkpoint)
    cfg = build_config(ckpt["config"])
    state = {k[len("backbone."):]: v for k, v in ckpt["model"].items() if k.startswith("backbone.")}
    if not state:
        raise WeightsError(f"checkpoint {checkpoint} holds no backbone weights (no 'backbone.*' keys)")
    m, channels = cfg.model, in_channels(cfg.data.modality)
    notes = []
    if fmt == "torchvision":
        tv, notes = convert.to_torchvision(m.backbone, state, width=m.width, in_channels=channels,
                                           options=m.options, allow_different=allow_different)
        if cfg.data.modality != "rgb":
            notes.append(f"trained on data.modality={cfg.data.modality}: torchvision's models see RGB")
        atomic_write(out, lambda f: torch.save(tv, f))
        count = len(tv)
    elif fmt in layouts.LAYOUTS:
        theirs, notes = layouts.to_layout(fmt, m.backbone, state, width=m.width, in_channels=channels,
                                          options=m.options)
        if cfg.data.modality != "rgb":
            notes.append(f"trained on data.modality={cfg.data.modality}: the published models see RGB")
        atomic_write(out, lambda f: torch.save(layouts.wrap(fmt, theirs), f))
        count = len(theirs)
    else:
        shapes = convert.reference_shapes(m.backbone, m.width, channels, m.options)
        convert.check_state(state, shapes,
                            f"checkpoint {checkpoint} does not fit backbone {m.backbone!r} at width {m.width}")
        write_safetensors(out, state, {"format": SAFETENSORS_KIND, "backbone": m.backbone, "width": str(m.width),
                                       "options": json.dumps(m.options), "config": json.dumps(to_dict(cfg))})
        count = len(state)
    return {"out": str(out), "backbone": m.backbone, "width": m.width, "tensors": count, "notes": notes}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise WeightsError(f"unknown weights format {fmt!r} (allowed: {', '.join(FORMATS)})")


def _config(raw: dict, overrides: list[str], src):
    """The validated config of an imported checkpoint: ``raw`` + the user's overrides."""
    return build_config(apply_overrides({"description": f"weights imported from {Path(src).name}", **raw},
                                        list(overrides)))


def _safetensors_config(metadata: dict, src) -> dict:
    """The config dict stored by :func:`export_weights` in a safetensors file's metadata."""
    if metadata.get("format") != SAFETENSORS_KIND or "config" not in metadata:
        raise WeightsError(f"{src} has no vidssl metadata (not written by `vidssl weights export --format "
                           "safetensors`); for torchvision's layout use --format torchvision")
    try:
        raw = json.loads(metadata["config"])
    except json.JSONDecodeError as e:
        raise WeightsError(f"{src}: the config in its metadata is not JSON ({e})") from None
    raw.get("train", {}).pop("init_from", None)  # the weights are in the file itself
    return raw
