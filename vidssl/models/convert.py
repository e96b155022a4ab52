"""Backbone state dicts in torchvision's layout: ``r3d18`` <-> ``r3d_18``, ``r2plus1d18`` <-> ``r2plus1d_18``.

torchvision's ``VideoResNet`` (``torchvision/models/video/resnet.py``) names its weights
``stem.*``, ``layer1..layer4.{0,1}.*`` and ``fc.*``; each block holds ``conv1`` =
Sequential(conv, BN, ReLU) and ``conv2`` = Sequential(conv, BN), where the conv of
R(2+1)D is itself Sequential(1x3x3 conv, BN, ReLU, 3x1x1 conv). The same network in
vidssl (``stem_pool=False``) maps key by key; only the names change:

    vidssl backbone state dict              torchvision
    stages.conv1.{i}.*                      stem.{i}.*  (r3d: 0 conv, 1 BN; R(2+1)D: 0 conv, 1 BN, 3 conv, 4 BN)
    stages.conv{s}.{b}.conv1.weight         layer{s-1}.{b}.conv1.0.weight       (r3d, 3x3x3)
    stages.conv{s}.{b}.conv1.{0,1,3}.*      layer{s-1}.{b}.conv1.0.{0,1,3}.*    (R(2+1)D)
    stages.conv{s}.{b}.bn1.*                layer{s-1}.{b}.conv1.1.*
    stages.conv{s}.{b}.conv2[.{0,1,3}].*    layer{s-1}.{b}.conv2.0[.{0,1,3}].*
    stages.conv{s}.{b}.bn2.*                layer{s-1}.{b}.conv2.1.*
    stages.conv{s}.{b}.downsample.{0,1}.*   layer{s-1}.{b}.downsample.{0,1}.*   (first block of layer2-4)
    (none)                                  fc.weight [400, 8w], fc.bias [400]  (the Kinetics classifier)

The classifier ``fc.*`` has no vidssl counterpart: :func:`from_torchvision` drops it and
reports it, :func:`to_torchvision` does not write it. Every key and shape is checked
against the backbone built with the same width and options; what does not fit is
named in one :class:`WeightsError`. torchvision builds these networks at width 64 on RGB
only; other widths and input channels keep the layout (noted, not refused). A vidssl
network that computes something else than torchvision's (``stem_pool=True``: a max
pool after conv1) is refused unless ``allow_different=True``, which converts it with a
note saying why the result is not torchvision's network. (Slow and SlowFast in PySlowFast's,
PyTorchVideo's and MMAction2's layouts: :mod:`vidssl.models.layouts`.)
"""
from __future__ import annotations

import re

import torch

from vidssl.errors import WeightsError
from vidssl.models import BACKBONES, backbone_options, build_backbone
from vidssl.models.layout_keys import guess_layout

TORCHVISION_NAMES = {"r3d18": "r3d_18", "r2plus1d18": "r2plus1d_18"}  # vidssl backbone -> torchvision builder
CLASSIFIER_KEYS = ("fc.weight", "fc.bias")
TORCHVISION_WIDTH, TORCHVISION_IN_CHANNELS = 64, 3
SHOWN = 20  # keys named per kind of problem in an error message

_STEM = re.compile(r"^stages\.conv1\.(\d+)\.(.+)$")
_BLOCK = re.compile(r"^stages\.conv([2-5])\.(\d+)\.(.+)$")
_INNER = [(re.compile(r"^conv1\.(.+)$"), "conv1.0.{}"), (re.compile(r"^bn1\.(.+)$"), "conv1.1.{}"),
          (re.compile(r"^conv2\.(.+)$"), "conv2.0.{}"), (re.compile(r"^bn2\.(.+)$"), "conv2.1.{}"),
          (re.compile(r"^downsample\.(.+)$"), "downsample.{}")]


def check_convertible(backbone: str) -> str:
    """torchvision's builder name for ``backbone``; :class:`WeightsError` when it has none."""
    if backbone not in TORCHVISION_NAMES:
        known = " (a vidssl backbone, but torchvision has no counterpart)" if backbone in BACKBONES else ""
        raise WeightsError(f"backbone {backbone!r} does not convert to or from torchvision{known}; "
                           f"convertible: {', '.join(f'{k} <-> {v}' for k, v in TORCHVISION_NAMES.items())}")
    return TORCHVISION_NAMES[backbone]


def network_differences(backbone: str, options: dict) -> list[str]:
    """Why the vidssl network computes something else than torchvision's although its weights
    map (empty when it is the same network)."""
    out = []
    if _stem_pool(backbone, options):
        out.append(f"{backbone} with stem_pool=true has a 1x3x3 max pool after conv1 that torchvision's "
                   f"{TORCHVISION_NAMES[backbone]} lacks (same parameters, maps half the size from conv2 on; "
                   "model.options.stem_pool=false builds torchvision's network)")
    return out


def size_notes(backbone: str, width: int, in_channels: int) -> list[str]:
    """What keeps the layout but differs from torchvision's builder (width, input channels)."""
    out = []
    if width != TORCHVISION_WIDTH:
        out.append(f"width {width}: torchvision builds {TORCHVISION_NAMES[backbone]} at width 64 only "
                   "(the keys are its layout, the shapes are this width's)")
    if in_channels != TORCHVISION_IN_CHANNELS:
        out.append(f"{in_channels} input channels: torchvision's {TORCHVISION_NAMES[backbone]} takes 3 (RGB)")
    return out


def reference_shapes(backbone: str, width: int, in_channels: int, options: dict) -> dict[str, tuple]:
    """Key -> shape of the vidssl backbone's state dict (built on the meta device: no memory, no init cost)."""
    with torch.device("meta"):
        net = build_backbone(backbone, in_channels=in_channels, width=width, **options)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def torchvision_key(key: str, pool_in_conv2: bool) -> str:
    """The torchvision name of a vidssl r3d18 / r2plus1d18 state-dict key (``ValueError`` if none)."""
    m = _STEM.match(key)
    if m:
        return f"stem.{m.group(1)}.{m.group(2)}"
    m = _BLOCK.match(key)
    if m:
        stage, index, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        block = index - (1 if stage == 2 and pool_in_conv2 else 0)  # the pool is module 0 of conv2
        for pattern, template in _INNER:
            inner = pattern.match(rest)
            if inner and block >= 0:
                return f"layer{stage - 1}.{block}.{template.format(inner.group(1))}"
    raise ValueError(f"no torchvision name for {key!r}")


def key_map(backbone: str, width: int, in_channels: int, options: dict) -> tuple[dict[str, str], dict[str, tuple]]:
    """(vidssl key -> torchvision key, vidssl key -> shape) of the backbone with these settings."""
    check_convertible(backbone)
    shapes = reference_shapes(backbone, width, in_channels, options)
    pool = _stem_pool(backbone, options)
    return {k: torchvision_key(k, pool) for k in shapes}, shapes


def _stem_pool(backbone: str, options: dict) -> bool:
    """Whether the backbone has the max pool after conv1 (r3d18 has it by default, torchvision never)."""
    return bool(options.get("stem_pool", backbone_options(backbone).get("stem_pool", False)))


def check_state(state: dict, expected: dict[str, tuple], what: str, ignore: tuple = (),
                fmt: str = "torchvision") -> None:
    """One :class:`WeightsError` naming every missing key, unknown key and wrong shape of
    ``state`` against ``expected`` (key -> shape); keys in ``ignore`` may be there or not.
    When none of ``expected`` is there, it names the layout the keys look like (``fmt`` is
    the one asked for)."""
    bad_values = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    missing = sorted(k for k in expected if k not in state)
    unknown = sorted(k for k in state if k not in expected and k not in ignore and k not in bad_values)
    wrong = sorted(k for k in expected
                   if isinstance(state.get(k), torch.Tensor) and tuple(state[k].shape) != expected[k])
    if not (missing or unknown or wrong or bad_values):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_listing(missing, lambda k: f'{k} {list(expected[k])}')})")
    if unknown:
        parts.append(f"{len(unknown)} unknown ({_listing(unknown, str)})")
    if wrong:
        shape = lambda k: f"{k} {list(state[k].shape)}, expected {list(expected[k])}"
        parts.append(f"{len(wrong)} of another shape ({_listing(wrong, shape)})")
    if bad_values:
        parts.append(f"{len(bad_values)} not tensors ({_listing(bad_values, str)})")
    hint = ""
    if expected and not set(expected) & set(state):
        hint = "; none of its keys is in this layout"
        guessed = guess_layout(state)
        if guessed == "safetensors":
            hint += ": they are vidssl's own key names (--format safetensors, or use the checkpoint as it is)"
        elif guessed and guessed != fmt:
            hint += f": they look like {guessed}'s layout (--format {guessed})"
    raise WeightsError(f"{what}: {'; '.join(parts)}{hint}")


def _listing(keys: list[str], show) -> str:
    text = ", ".join(show(k) for k in keys[:SHOWN])
    return text + (f", ... {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def _differences(backbone: str, options: dict, allow_different: bool) -> list[str]:
    reasons = network_differences(backbone, options)
    if reasons and not allow_different:
        raise WeightsError(f"not torchvision's network: {'; '.join(reasons)}")
    return [f"not torchvision's network: {r}" for r in reasons]


def to_torchvision(backbone: str, state: dict, *, width: int, in_channels: int = 3, options: dict | None = None,
                   allow_different: bool = False) -> tuple[dict, list[str]]:
    """(torchvision state dict without ``fc.*``, notes) of a vidssl backbone state dict."""
    options = dict(options or {})
    name = check_convertible(backbone)
    notes = _differences(backbone, options, allow_different) + size_notes(backbone, width, in_channels)
    mapping, shapes = key_map(backbone, width, in_channels, options)
    check_state(state, shapes, f"the weights do not fit vidssl's {backbone} at width {width} (for {name})")
    return {mapping[k]: state[k] for k in shapes}, notes


def from_torchvision(backbone: str, state: dict, *, options: dict | None = None,
                     allow_different: bool = False) -> tuple[dict, dict]:
    """(vidssl backbone state dict, info) of a torchvision ``r3d_18`` / ``r2plus1d_18`` state dict.

    The width and input channels are read from the stem (64 and 3 for torchvision's own
    weights); ``info`` holds ``width``, ``in_channels``, ``dropped`` (the ``fc.*`` keys
    found, with their shapes) and ``notes``. A missing ``num_batches_tracked`` (state dicts
    of old PyTorch versions) becomes 0, as ``load_state_dict`` would make it.
    """
    options = dict(options or {})
    name = check_convertible(backbone)
    width, in_channels = torchvision_sizes(backbone, state)
    notes = _differences(backbone, options, allow_different) + size_notes(backbone, width, in_channels)
    mapping, shapes = key_map(backbone, width, in_channels, options)
    expected = {mapping[k]: s for k, s in shapes.items()}
    counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in state]
    if counters and set(expected) & set(state):  # some of the layout is there (else the error says so)
        state = {**state, **{k: torch.tensor(0, dtype=torch.long) for k in counters}}
        notes.append(f"{len(counters)} BN counters num_batches_tracked missing, set to 0")
    check_state(state, expected, f"the weights do not fit torchvision's {name} layout at width {width}",
                ignore=CLASSIFIER_KEYS)
    dropped = {k: list(state[k].shape) for k in CLASSIFIER_KEYS if isinstance(state.get(k), torch.Tensor)}
    return ({k: state[tv] for k, tv in mapping.items()},
            {"width": width, "in_channels": in_channels, "dropped": dropped, "notes": notes})


def torchvision_sizes(backbone: str, state: dict) -> tuple[int, int]:
    """(width, in_channels) from the stem: the last stem BN's size, the first conv's input channels."""
    last_bn = "stem.1.weight" if backbone == "r3d18" else "stem.4.weight"
    width, cin = TORCHVISION_WIDTH, TORCHVISION_IN_CHANNELS
    if isinstance(state.get(last_bn), torch.Tensor) and state[last_bn].dim() == 1:
        width = int(state[last_bn].shape[0])
    conv = state.get("stem.0.weight")
    if isinstance(conv, torch.Tensor) and conv.dim() == 5:
        cin = int(conv.shape[1])
    return width, cin
