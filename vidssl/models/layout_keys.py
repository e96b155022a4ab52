"""The parts of a Slow / SlowFast state dict, named once on vidssl's side, for the other libraries' layouts.

A vidssl key of ``slow_r50`` / ``slowfast_r50`` is parsed into a :class:`Part`; each layout
(``layout_pyslowfast``, ``layout_pytorchvideo``, ``layout_mmaction2``) renders a Part as its
own key. vidssl's keys (``build_backbone(...).state_dict()``):

    slow_r50 (models/slow.py)                       slowfast_r50 (models/slowfast.py)
    stages.conv1.0.weight       stem conv           {slow,fast}.conv1.0.weight
    stages.conv1.1.*            stem BN             {slow,fast}.conv1.1.*
    stages.conv2.{b+1}.*        res2 block b        {slow,fast}.conv2.{b}.*    (module 0 of Slow's
    stages.conv{s}.{b}.*        res{s} block b      {slow,fast}.conv{s}.{b}.*   conv2 is pool1)
    (none)                                          lateral.conv{k}.{0,1}.*    conv + BN after stage k = 1..4

inside a bottleneck block: ``conv1`` (kt x 1 x 1), ``bn1``, ``conv2`` (1 x 3 x 3, the spatial
stride), ``bn2``, ``conv3`` (1 x 1 x 1), ``bn3``, ``downsample.{0,1}`` (projection shortcut:
1 x 1 x 1 conv + BN, first block of a stage only).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

PATHWAYS = {"slow": 0, "fast": 1}  # pathway 0 is the Slow one in every library
BLOCK_MODULES = {"conv1": "conv1", "bn1": "bn1", "conv2": "conv2", "bn2": "bn2", "conv3": "conv3", "bn3": "bn3",
                 "downsample.0": "short_conv", "downsample.1": "short_bn"}

_SLOW_STEM = re.compile(r"^stages\.conv1\.([01])\.(\w+)$")
_SLOW_BLOCK = re.compile(r"^stages\.conv([2-5])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)$")
_SF_STEM = re.compile(r"^(slow|fast)\.conv1\.([01])\.(\w+)$")
_SF_BLOCK = re.compile(r"^(slow|fast)\.conv([2-5])\.(\d+)\.(conv[123]|bn[123]|downsample\.[01])\.(\w+)$")
_SF_LATERAL = re.compile(r"^lateral\.conv([1-4])\.([01])\.(\w+)$")


@dataclass(frozen=True)
class Part:
    """One tensor of a Slow / SlowFast network, independent of any library's naming.

    ``kind``: ``stem`` / ``block`` / ``lateral``; ``module``: ``conv`` / ``bn`` (stem, lateral) or one of
    :data:`BLOCK_MODULES`' values (block); ``stage`` 2..5 for blocks, the stage a lateral follows
    (1..4); ``block`` numbered from 0 within its stage; ``param`` the tensor's own name (weight, bias,
    running_mean, running_var, num_batches_tracked)."""

    pathway: int
    kind: str
    module: str
    param: str
    stage: int = 1
    block: int = 0


def parse_key(backbone: str, key: str) -> Part:
    """The :class:`Part` of a vidssl ``slow_r50`` / ``slowfast_r50`` key (``ValueError`` if none)."""
    if backbone.startswith("slowfast"):
        m = _SF_STEM.match(key)
        if m:
            return Part(PATHWAYS[m.group(1)], "stem", ("conv", "bn")[int(m.group(2))], m.group(3))
        m = _SF_BLOCK.match(key)
        if m:
            return Part(PATHWAYS[m.group(1)], "block", BLOCK_MODULES[m.group(4)], m.group(5), int(m.group(2)),
                        int(m.group(3)))
        m = _SF_LATERAL.match(key)
        if m:
            return Part(1, "lateral", ("conv", "bn")[int(m.group(2))], m.group(3), int(m.group(1)))
    else:
        m = _SLOW_STEM.match(key)
        if m:
            return Part(0, "stem", ("conv", "bn")[int(m.group(1))], m.group(2))
        m = _SLOW_BLOCK.match(key)
        if m:
            stage, index = int(m.group(1)), int(m.group(2))
            block = index - 1 if stage == 2 else index  # pool1 is module 0 of Slow's conv2
            if block >= 0:
                return Part(0, "block", BLOCK_MODULES[m.group(3)], m.group(4), stage, block)
    raise ValueError(f"no part of {backbone} is named {key!r}")


@dataclass(frozen=True)
class Layout:
    """Another library's key layout of vidssl backbones.

    ``models``: vidssl backbone -> the other library's model it converts to; ``refused``: vidssl
    backbone -> why it does not convert although the library has a model of that name;
    ``render(backbone, part) -> key``; ``heads``: backbone -> key prefixes of what is not the
    backbone (the classifier), dropped and reported on import; ``wrapper``: the checkpoint key
    their files hold the state dict under (None: a plain state dict); ``shortcut``: the word of their
    projection-shortcut keys; ``two_pathway``: key prefixes that only a two-pathway (SlowFast)
    file has. (:data:`SIGNATURES` names the prefixes that identify each layout.)"""

    name: str
    title: str
    models: dict[str, str]
    render: Callable[[str, Part], str]
    heads: dict[str, tuple[str, ...]]
    wrapper: str | None
    shortcut: str
    two_pathway: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    unwrap_keys: tuple[str, ...] = ("model_state", "state_dict", "model")  # where imports look for the weights


# key prefixes of each known layout, to name the one a file is in when it is not the one asked for
SIGNATURES = {
    "torchvision": ("stem.0.", "layer1.0.conv1.0."),
    "pyslowfast": ("s1.pathway0_stem.", "s2.pathway0_res0."),
    "pytorchvideo": ("blocks.0.conv.", "blocks.0.multipathway_blocks."),
    "mmaction2": ("backbone.conv1.conv.", "backbone.slow_path.", "conv1.conv.", "layer1.0.conv1.conv."),
    "safetensors": ("stages.conv1.", "slow.conv1."),  # vidssl's own key names
}


def guess_layout(keys) -> str | None:
    """The format (``--format`` name) whose key prefixes the most of ``keys`` start with (after a
    DDP ``module.``), or None."""
    keys = [k[len("module."):] if k.startswith("module.") else k for k in keys if isinstance(k, str)]
    counts = {name: sum(k.startswith(prefixes) for k in keys) for name, prefixes in SIGNATURES.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] else None
