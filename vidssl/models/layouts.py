"""Slow / SlowFast state dicts in PySlowFast's, PyTorchVideo's and MMAction2's layouts.

    format        vidssl backbone  their model
    pyslowfast    slow_r50         SLOW_8x8_R50          (layout_pyslowfast.py)
                  slowfast_r50     SLOWFAST_8x8_R50
    pytorchvideo  slow_r50         hub.slow_r50          (layout_pytorchvideo.py)
                  slowfast_r50     hub.slowfast_r50
    mmaction2     slow_r50         ResNet3dSlowOnly R-50 (layout_mmaction2.py; its SlowFast differs: refused)

These are the same networks as vidssl's (the same convolutions, BN, strides and fusion), so
every tensor maps one to one; only the names change (:mod:`vidssl.models.layout_keys`). As
for torchvision (:mod:`vidssl.models.convert`): every key and shape is checked against the
vidssl backbone built with the width and options read from the weights, and what does not
fit is named in one :class:`WeightsError` (with what it says about the architecture: another
stem, a shortcut where vidssl has none, another layout); classifier heads are dropped and
reported on import and not written on export; widths other than 64 and input channels other
than 3 keep the layout, with a note.
"""
from __future__ import annotations

import torch

from vidssl.errors import WeightsError
from vidssl.models import BACKBONES, backbone_options
from vidssl.models.convert import check_state, reference_shapes
from vidssl.models.layout_keys import Layout, guess_layout, parse_key
from vidssl.models.layout_mmaction2 import LAYOUT as MMACTION2
from vidssl.models.layout_pyslowfast import LAYOUT as PYSLOWFAST
from vidssl.models.layout_pytorchvideo import LAYOUT as PYTORCHVIDEO

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (PYSLOWFAST, PYTORCHVIDEO, MMACTION2)}
PUBLISHED = {"width": 64, "in_channels": 3}  # what every published model of these layouts is
# the SlowFast options the published 8x8 models have (PySlowFast's SLOWFAST_8x8_R50, PyTorchVideo's hub model)
SLOWFAST_8X8 = {"alpha": 4, "beta": 8, "fusion_ratio": 2, "fusion_kernel": 7}
STEM_KERNELS = {"slow": (1, 7, 7), "fast": (5, 7, 7)}


def layout(fmt: str) -> Layout:
    if fmt not in LAYOUTS:
        raise WeightsError(f"unknown layout {fmt!r} (allowed: {', '.join(LAYOUTS)})")
    return LAYOUTS[fmt]


def check_convertible(fmt: str, backbone: str) -> str:
    """The other library's model for ``backbone``; :class:`WeightsError` saying why when there is none."""
    lay = layout(fmt)
    if backbone in lay.refused:
        raise WeightsError(f"backbone {backbone!r} does not convert to or from {lay.title}: {lay.refused[backbone]}")
    if backbone not in lay.models:
        known = " (a vidssl backbone, but it has no counterpart there)" if backbone in BACKBONES else ""
        raise WeightsError(f"backbone {backbone!r} does not convert to or from {lay.title}'s layout{known}; "
                           f"convertible: {', '.join(f'{k} <-> {v}' for k, v in lay.models.items())}")
    return lay.models[backbone]


def key_map(fmt: str, backbone: str, width: int, in_channels: int, options: dict
            ) -> tuple[dict[str, str], dict[str, tuple]]:
    """(vidssl key -> their key, vidssl key -> shape) of the backbone with these settings."""
    check_convertible(fmt, backbone)
    shapes = reference_shapes(backbone, width, in_channels, options)
    render = LAYOUTS[fmt].render
    return {k: render(backbone, parse_key(backbone, k)) for k in shapes}, shapes


def size_notes(fmt: str, backbone: str, width: int, in_channels: int, options: dict) -> list[str]:
    """What keeps the layout but is not the published model (width, input channels, SlowFast options)."""
    lay, out = LAYOUTS[fmt], []
    if width != PUBLISHED["width"]:
        out.append(f"width {width}: {lay.title}'s published {lay.models[backbone]} is width 64 "
                   "(the keys are its layout, the shapes are this width's)")
    if in_channels != PUBLISHED["in_channels"]:
        out.append(f"{in_channels} input channels: {lay.title}'s published models take 3 (RGB)")
    if options.get("conv5_dilation", 1) != 1:  # the same weights; a config choice of the network
        out.append(f"conv5_dilation={options['conv5_dilation']}: res5 at stride 1 with dilated 1x3x3 filters, as "
                   "the AVA detection configs build it (PySlowFast SPATIAL_STRIDES ..., 1 and SPATIAL_DILATIONS "
                   "..., 2); the published Kinetics models have a stride-2 res5")
    if backbone.startswith("slowfast"):
        opts = {**backbone_options(backbone), **options}
        other = {k: opts[k] for k, v in SLOWFAST_8X8.items() if opts[k] != v}
        if other:
            shown = ", ".join(f"{k}={v}" for k, v in other.items())
            out.append(f"SlowFast with {shown}: not the 8x8 setting (alpha=4, beta=8, fusion_ratio=2, "
                       "fusion_kernel=7) of the published model; the 4x16 one is alpha=8, fusion_kernel=5")
    return out


def read_sizes(fmt: str, backbone: str, state: dict) -> tuple[int, int, dict]:
    """(width, in_channels, options) of the network in ``state`` (their layout), from its stem and
    first lateral; what is not there keeps the published value. ``alpha`` (the laterals' temporal
    stride) is not in the weights: it stays the backbone's default (4) unless an override says so."""
    check_convertible(fmt, backbone)
    render = LAYOUTS[fmt].render
    two = backbone.startswith("slowfast")
    first = "slow." if two else "stages."

    def shape(vidssl_key: str, dims: int):
        t = state.get(render(backbone, parse_key(backbone, vidssl_key)))
        return tuple(t.shape) if isinstance(t, torch.Tensor) and t.dim() == dims else None

    width, cin, options = PUBLISHED["width"], PUBLISHED["in_channels"], {}
    bn, conv = shape(f"{first}conv1.1.weight", 1), shape(f"{first}conv1.0.weight", 5)
    width = bn[0] if bn else width
    cin = conv[1] if conv else cin
    if two:
        fast_bn, lateral = shape("fast.conv1.1.weight", 1), shape("lateral.conv1.0.weight", 5)
        if fast_bn and fast_bn[0] and width % fast_bn[0] == 0:
            options["beta"] = width // fast_bn[0]
        if lateral and lateral[1] and lateral[0] % lateral[1] == 0:
            options["fusion_ratio"], options["fusion_kernel"] = lateral[0] // lateral[1], lateral[2]
    return width, cin, options


def guess_backbone(fmt: str, state: dict) -> str:
    """``slowfast_r50`` when ``state`` has a Fast pathway (the layout's two-pathway keys), else
    ``slow_r50`` (:class:`WeightsError` when that does not convert: MMAction2's SlowFast)."""
    backbone = "slowfast_r50" if _two_pathways(layout(fmt), state) else "slow_r50"
    check_convertible(fmt, backbone)
    return backbone


def _two_pathways(lay: Layout, state: dict) -> bool:
    return any(isinstance(k, str) and k.startswith(lay.two_pathway) for k in state)


def unwrap(fmt: str, obj: dict) -> tuple[dict, list[str]]:
    """(state dict, notes) of a file's contents: the dict under the layout's checkpoint key
    (``model_state``, ``state_dict``) when there is one, ``module.`` (DDP) taken off every key;
    an MMAction2 backbone without the ``backbone.`` prefix gets it."""
    lay, notes = layout(fmt), []
    for key in lay.unwrap_keys:
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            notes.append(f"weights read from the checkpoint's {key!r}")
            break
    keys = [k for k in obj if isinstance(k, str)]
    if keys and all(k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
        notes.append("'module.' (DistributedDataParallel) taken off every key")
    if fmt == "mmaction2" and not any(k.startswith("backbone.") for k in obj) and \
            any(k.startswith(("conv1.conv.", "layer1.")) for k in obj):
        obj = {f"backbone.{k}": v for k, v in obj.items()}
        notes.append("a bare backbone state dict: read as backbone.*")
    return dict(obj), notes


def wrap(fmt: str, state: dict) -> dict:
    """What export writes: the state dict under the layout's checkpoint key, or plain."""
    key = layout(fmt).wrapper
    return {key: state} if key else state


def head_keys(fmt: str, backbone: str, state: dict) -> list[str]:
    """The keys of ``state`` that are not the backbone (classifier, preprocessing buffers)."""
    prefixes = layout(fmt).heads.get(backbone, ())
    return [k for k in state if isinstance(k, str) and k.startswith(prefixes)] if prefixes else []


def to_layout(fmt: str, backbone: str, state: dict, *, width: int, in_channels: int = 3,
              options: dict | None = None) -> tuple[dict, list[str]]:
    """(their state dict without a head, notes) of a vidssl backbone state dict."""
    options = dict(options or {})
    name = check_convertible(fmt, backbone)
    mapping, shapes = key_map(fmt, backbone, width, in_channels, options)
    check_state(state, shapes, f"the weights do not fit vidssl's {backbone} at width {width} (for {name})")
    return {mapping[k]: state[k] for k in shapes}, size_notes(fmt, backbone, width, in_channels, options)


def from_layout(fmt: str, backbone: str, state: dict, *, options: dict | None = None) -> tuple[dict, dict]:
    """(vidssl backbone state dict, info) of a state dict in ``fmt``'s layout (already unwrapped).

    ``info``: ``width``, ``in_channels``, ``options`` (read from the weights: :func:`read_sizes`),
    ``dropped`` (the head keys found, with their shapes), ``notes``. Missing BN counters
    (``num_batches_tracked``) become 0, as ``load_state_dict`` would make them."""
    lay = layout(fmt)
    name = check_convertible(fmt, backbone)
    width, in_channels, read = read_sizes(fmt, backbone, state)
    options = {**read, **dict(options or {})}
    mapping, shapes = key_map(fmt, backbone, width, in_channels, options)
    expected = {mapping[k]: s for k, s in shapes.items()}
    notes = size_notes(fmt, backbone, width, in_channels, options)
    given = state
    counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in state]
    if counters and set(expected) & set(state):
        state = {**state, **{k: torch.tensor(0, dtype=torch.long) for k in counters}}
        notes.append(f"{len(counters)} BN counters num_batches_tracked missing, set to 0")
    heads = head_keys(fmt, backbone, state)
    try:
        check_state(state, expected, f"the weights do not fit {lay.title}'s {name} layout at width {width}",
                    ignore=tuple(heads), fmt=fmt)
    except WeightsError as e:
        hints = architecture_hints(fmt, backbone, given, expected, mapping)  # the file's keys, not the filled ones
        raise WeightsError("; ".join([str(e), *hints])) from None
    dropped = {k: list(state[k].shape) for k in heads if isinstance(state[k], torch.Tensor)}
    return ({k: state[theirs] for k, theirs in mapping.items()},
            {"width": width, "in_channels": in_channels, "options": read, "dropped": dropped, "notes": notes})


def architecture_hints(fmt: str, backbone: str, state: dict, expected: dict[str, tuple],
                       mapping: dict[str, str]) -> list[str]:
    """What the mismatch says about the network in ``state``: another stem, other temporal kernels,
    shortcuts where vidssl has none (or none where it has one), another number of pathways,
    another layout. Empty when nothing is recognised."""
    lay, out = LAYOUTS[fmt], []
    present = set(state) & set(expected)  # (none: check_state names the layout the keys look like)
    for path in (("slow", "fast") if backbone.startswith("slowfast") else ("slow",)):
        vkey = f"{path}.conv1.0.weight" if backbone.startswith("slowfast") else "stages.conv1.0.weight"
        key, t = mapping[vkey], state.get(mapping[vkey])
        if isinstance(t, torch.Tensor) and t.dim() == 5 and tuple(t.shape[2:]) != expected[key][2:]:
            kt, kh, kw = t.shape[2:]
            want = "x".join(map(str, STEM_KERNELS[path]))
            out.append(f"stem: {key} is a {kt}x{kh}x{kw} convolution, vidssl's {backbone} {path} stem is {want} "
                       "(another network: e.g. I3D's 5x7x7 or C2D's; not convertible)")
    blocks = {theirs for ours, theirs in mapping.items() if parse_key(backbone, ours).kind == "block"}
    temporal = sorted(k for k in present & blocks if isinstance(state[k], torch.Tensor) and state[k].dim() == 5
                      and len(expected[k]) == 5 and state[k].shape[2] != expected[k][2]
                      and tuple(state[k].shape[:2]) + tuple(state[k].shape[3:]) == expected[k][:2] + expected[k][3:])
    if temporal:
        k = temporal[0]
        out.append(f"temporal kernels: {len(temporal)} convolutions differ only in time (e.g. {k}: "
                   f"{state[k].shape[2]} frames, vidssl's {expected[k][2]}): another inflation pattern "
                   "(I3D / C2D), not the Slow network's (temporal kernel 3 in res4 and res5 only)")
    short, heads = lay.shortcut, lay.heads.get(backbone, ())
    extra = sorted({k.split(short)[0] for k in state if isinstance(k, str) and short in k and k not in expected
                    and not (heads and k.startswith(heads))})
    lacking = sorted({k.split(short)[0] for k in expected if short in k and k not in state})
    if extra and present:
        out.append(f"shortcut: a projection shortcut ({short}*) in {_few(extra)} where vidssl's {backbone} "
                   "has the identity")
    if lacking and present:
        out.append(f"shortcut: no projection shortcut in {_few(lacking)} where vidssl's {backbone} has one "
                   "(1x1x1 conv + BN where the shape changes)")
    in_layout = bool(present) or guess_layout(state) == fmt
    if backbone.startswith("slowfast") and in_layout and not _two_pathways(lay, state):
        out.append("no Fast pathway in the file: a Slow-only network (--backbone slow_r50)")
    if not backbone.startswith("slowfast") and _two_pathways(lay, state):
        out.append(lay.refused.get("slowfast_r50",
                                   "the file holds a Fast pathway: a SlowFast network (--backbone slowfast_r50)"))
    return out


def _few(items: list[str], shown: int = 3) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")
