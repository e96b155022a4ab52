"""PySlowFast's key layout (facebookresearch/SlowFast, ``slowfast/models/``) of ``slow_r50`` and ``slowfast_r50``.

``slow_r50`` is ``MODEL.ARCH: slow`` (class ``ResNet``, configs/Kinetics/SLOW_8x8_R50.yaml) and
``slowfast_r50`` is ``MODEL.ARCH: slowfast`` (class ``SlowFast``, SLOWFAST_8x8_R50.yaml: ALPHA 4,
BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2, FUSION_KERNEL_SZ 7; the 4x16 models use ALPHA 8 and
FUSION_KERNEL_SZ 5, which vidssl builds with ``alpha=8, fusion_kernel=5``). Both are
DEPTH 50, bottleneck_transform, STRIDE_1X1 False (the spatial stride on the 1x3x3 conv),
NUM_BLOCK_TEMP_KERNEL = every block, temporal kernels conv1..res5 = Slow 1, 1, 1, 3, 3 and
Fast 5, 3, 3, 3, 3 (``_TEMPORAL_KERNEL_BASIS``), pathway pools of kernel 1 (``_POOL1``: no-ops).

    Part                      PySlowFast key (video_model_builder.py, stem_helper.py, resnet_helper.py)
    stem conv / BN            s1.pathway{p}_stem.conv.* / .bn.*                 (ResNetBasicStem)
    block conv1 / bn1         s{s}.pathway{p}_res{b}.branch2.a.* / .a_bn.*     (BottleneckTransform)
    block conv2 / bn2         s{s}.pathway{p}_res{b}.branch2.b.* / .b_bn.*
    block conv3 / bn3         s{s}.pathway{p}_res{b}.branch2.c.* / .c_bn.*
    shortcut conv / BN        s{s}.pathway{p}_res{b}.branch1.* / .branch1_bn.* (ResBlock)
    lateral after stage k     s{k}_fuse.conv_f2s.* / .bn.*                     (FuseFastToSlow)
    (dropped on import)       head.projection.weight [classes, 2048 (+256)], .bias (ResNetBasicHead)

Checkpoints are ``{"model_state": state dict, "epoch", "optimizer_state", "cfg"}`` (from DDP
runs with ``module.`` before every key); export writes ``{"model_state": ...}`` without the head.
"""
from __future__ import annotations

from vidssl.models.layout_keys import Layout, Part

_BLOCK = {"conv1": "branch2.a", "bn1": "branch2.a_bn", "conv2": "branch2.b", "bn2": "branch2.b_bn",
          "conv3": "branch2.c", "bn3": "branch2.c_bn", "short_conv": "branch1", "short_bn": "branch1_bn"}


def render(backbone: str, p: Part) -> str:
    """The PySlowFast key of a part of ``slow_r50`` / ``slowfast_r50``."""
    if p.kind == "stem":
        return f"s1.pathway{p.pathway}_stem.{p.module}.{p.param}"
    if p.kind == "lateral":
        return f"s{p.stage}_fuse.{'conv_f2s' if p.module == 'conv' else 'bn'}.{p.param}"
    return f"s{p.stage}.pathway{p.pathway}_res{p.block}.{_BLOCK[p.module]}.{p.param}"


LAYOUT = Layout(
    name="pyslowfast", title="PySlowFast",
    models={"slow_r50": "SLOW_8x8_R50 (MODEL.ARCH slow)", "slowfast_r50": "SLOWFAST_8x8_R50 (MODEL.ARCH slowfast)"},
    render=render,
    heads={"slow_r50": ("head.",), "slowfast_r50": ("head.",)},
    wrapper="model_state", shortcut="branch1",
    two_pathway=("s1.pathway1_stem.",),
    unwrap_keys=("model_state",),
)
