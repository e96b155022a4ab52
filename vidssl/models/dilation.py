"""The last stage at spatial stride 1 with dilated filters: the detection backbone of App. B.3.

The large-scale study's AVA detector (after SlowFast, Feichtenhofer et al. 2019) sets "the
spatial stride of res5 to 1 (instead of 2), and use[s] a dilation of 2 for its filters",
doubling the resolution of the map its RoIs are pooled from (stride 16 instead of 32).

:func:`dilate_conv5` does this in place on a built (or loaded) backbone, with the weights
unchanged: every convolution of ``conv5`` with spatial stride 2 gets stride 1, and every
spatial kernel after it (in forward order) a spatial dilation of 2 with its padding
doubled ("a trous", as torchvision's ``replace_stride_with_dilation`` and DeepLab). The
strided convolution itself keeps dilation 1: it now samples every position instead of
every other one. So the dilated map at even positions is exactly the original map,
``dilated[..., ::2, ::2] == original`` (eval mode; ``tests/test_detect_model.py``), and a
pretrained network's filters see what they were trained on. (PySlowFast dilates the 3x3
convolution of every res5 block, the first one included; here that one keeps the
receptive field of the pretrained net.) Time is untouched: temporal strides stay.

``build_backbone(..., conv5_dilation=2)`` builds a backbone this way
(:data:`DILATABLE`: the 3D ResNets and the Slow pathway, whose stages are chains of 3D
convolutions; other backbones refuse with a :class:`BackboneError`).
"""
from __future__ import annotations

import torch.nn as nn

from vidssl.errors import BackboneError
from vidssl.models.resnet3d import ResNet3d
from vidssl.models.slow import Slow

DILATABLE = ("r3d18", "r3d34", "r2plus1d18", "slow_r18", "slow_r50")


def dilate_conv5(backbone: nn.Module, dilation: int = 2) -> nn.Module:
    """``backbone``'s ``conv5`` at spatial stride 1 with spatial dilation ``dilation`` after the
    removed stride, in place (see the module docstring); returns ``backbone``.

    Sets ``backbone.conv5_dilation``. Raises :class:`BackboneError` for a backbone that is not a
    3D ResNet or a Slow pathway (:data:`DILATABLE`), or one dilated already.
    """
    if dilation not in (1, 2):
        raise BackboneError(f"conv5_dilation must be 1 (the stride-2 stage) or 2 (stride 1, dilation 2), "
                            f"got {dilation!r}")
    if dilation == 1:  # nothing to change
        return backbone
    if getattr(backbone, "conv5_dilation", 1) != 1:
        raise BackboneError("conv5 of this backbone is dilated already")
    if not isinstance(backbone, (ResNet3d, Slow)):
        raise BackboneError(f"conv5_dilation is built for the 3D ResNets and the Slow pathway ({', '.join(DILATABLE)}), "
                            f"whose conv5 is a chain of strided 3D convolutions; not for {type(backbone).__name__}")
    convs = [m for m in backbone.stages["conv5"].modules() if isinstance(m, nn.Conv3d)]
    strided = False
    for conv in convs:  # registration order = forward order in the blocks of vidssl.models.blocks
        st, sh, sw = conv.stride
        if sh == 2 or sw == 2:
            conv.stride = (st, 1, 1)
            strided = True
        elif strided:
            _, kh, kw = conv.kernel_size
            if kh > 1 or kw > 1:
                dt = conv.dilation[0]
                conv.dilation = (dt, dilation * conv.dilation[1], dilation * conv.dilation[2])
                conv.padding = (conv.padding[0], conv.dilation[1] * (kh // 2), conv.dilation[2] * (kw // 2))
    if not strided:
        raise BackboneError(f"conv5 of {type(backbone).__name__} has no spatial stride 2 to replace by dilation")
    backbone.conv5_dilation = dilation
    return backbone
