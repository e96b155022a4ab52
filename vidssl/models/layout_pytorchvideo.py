"""PyTorchVideo's key layout (facebookresearch/pytorchvideo, ``pytorchvideo/models/``) of ``slow_r50`` and
``slowfast_r50``.

``slow_r50`` is ``pytorchvideo.models.hub.slow_r50`` = ``create_resnet(model_depth=50,
stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 7, 7))``; ``slowfast_r50`` is
``hub.slowfast_r50`` = ``create_slowfast(model_depth=50, slowfast_fusion_conv_kernel_size=(7, 1, 1))``
(defaults: channel reduction 8, fusion channel ratio 2, fusion stride (4, 1, 1), stems 1x7x7 /
5x7x7, conv_a kernels Slow (1, 1, 3, 3) x 1x1, Fast 3x1x1 everywhere, spatial stride on conv_b).
The same networks as PySlowFast's, with other names:

    Part                    slow_r50 key (resnet.py, stem.py)
    stem conv / BN          blocks.0.conv.* / .norm.*
    block conv1 / bn1       blocks.{s-1}.res_blocks.{b}.branch2.conv_a.* / .norm_a.*
    block conv2 / bn2       ... branch2.conv_b.* / .norm_b.*
    block conv3 / bn3       ... branch2.conv_c.* / .norm_c.*
    shortcut conv / BN      ... branch1_conv.* / .branch1_norm.*
    (dropped on import)     blocks.5.proj.weight [400, 2048], .bias

    slowfast_r50 (slowfast.py, net.py): the stem and blocks as above under
    blocks.{s-1}.multipathway_blocks.{p} (blocks.0.multipathway_blocks.{p}.conv.*, ...);
    lateral after stage k   blocks.{k-1}.multipathway_fusion.conv_fast_to_slow.* / .norm.*
    (dropped on import)     blocks.6.proj.weight [400, 2304], .bias (blocks.5 is the pooling, no weights)

Hub checkpoints are ``{"model_state": state dict}``; plain state dicts import too. Export writes
a plain state dict without the head (``model.load_state_dict(sd, strict=False)``).
"""
from __future__ import annotations

from vidssl.models.layout_keys import Layout, Part

_BLOCK = {"conv1": "branch2.conv_a", "bn1": "branch2.norm_a", "conv2": "branch2.conv_b", "bn2": "branch2.norm_b",
          "conv3": "branch2.conv_c", "bn3": "branch2.norm_c", "short_conv": "branch1_conv", "short_bn": "branch1_norm"}


def render(backbone: str, p: Part) -> str:
    """The PyTorchVideo key of a part of ``slow_r50`` / ``slowfast_r50``."""
    two = backbone.startswith("slowfast")
    if p.kind == "lateral":
        module = "conv_fast_to_slow" if p.module == "conv" else "norm"
        return f"blocks.{p.stage - 1}.multipathway_fusion.{module}.{p.param}"
    block = f"blocks.{p.stage - 1}" + (f".multipathway_blocks.{p.pathway}" if two else "")
    if p.kind == "stem":
        return f"{block}.{'conv' if p.module == 'conv' else 'norm'}.{p.param}"
    return f"{block}.res_blocks.{p.block}.{_BLOCK[p.module]}.{p.param}"


LAYOUT = Layout(
    name="pytorchvideo", title="PyTorchVideo",
    models={"slow_r50": "pytorchvideo.models.hub.slow_r50", "slowfast_r50": "pytorchvideo.models.hub.slowfast_r50"},
    render=render,
    heads={"slow_r50": ("blocks.5.",), "slowfast_r50": ("blocks.6.",)},
    wrapper=None, shortcut="branch1_",
    two_pathway=("blocks.0.multipathway_blocks.1.",),
    unwrap_keys=("model_state", "state_dict"),
)
