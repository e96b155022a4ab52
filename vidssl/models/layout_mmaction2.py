"""MMAction2's key layout (open-mmlab/mmaction2, ``mmaction/models/backbones/``) of ``slow_r50``.

``slow_r50`` is ``ResNet3dSlowOnly`` (resnet3d_slowonly.py; configs/_base_/models/slowonly_r50.py:
depth 50, conv1_kernel (1, 7, 7), conv1_stride_t 1, pool1_stride_t 1, inflate (0, 0, 1, 1),
style ``pytorch`` = the spatial stride on conv2, inflate_style ``3x1x1``), a ``ResNet3d``
(resnet3d.py) whose blocks (``Bottleneck3d``) hold ``ConvModule``\\ s named ``conv`` + ``bn``:

    Part                    MMAction2 key
    stem conv / BN          backbone.conv1.conv.* / backbone.conv1.bn.*
    block conv1 / bn1       backbone.layer{s-1}.{b}.conv1.conv.* / .conv1.bn.*
    block conv2 / bn2       backbone.layer{s-1}.{b}.conv2.conv.* / .conv2.bn.*
    block conv3 / bn3       backbone.layer{s-1}.{b}.conv3.conv.* / .conv3.bn.*
    shortcut conv / BN      backbone.layer{s-1}.{b}.downsample.conv.* / .downsample.bn.*
    (dropped on import)     cls_head.fc_cls.weight [400, 2048], .bias (I3DHead); data_preprocessor.*

The temporal strides (conv1_stride_t, pool1_stride_t, temporal_strides) are not in the weights:
conversion assumes ResNet3dSlowOnly's (all 1), as every slowonly config has. Checkpoints are
``{"meta", "state_dict": {...}, "optimizer"}``; export writes ``{"state_dict": {"backbone.*"}}``.

MMAction2's SlowFast (``ResNet3dSlowFast``, resnet3d_slowfast.py) is not the same network as
vidssl's (or PySlowFast's): its laterals (``slow_path.conv1_lateral``, ``layer{i}_lateral``) are a
bare convolution, ``ConvModule(..., norm_cfg=None, act_cfg=None)``, where vidssl's are conv ->
BN -> ReLU; so ``slowfast_r50`` is refused.
"""
from __future__ import annotations

from vidssl.models.layout_keys import Layout, Part

_BLOCK = {"conv1": "conv1.conv", "bn1": "conv1.bn", "conv2": "conv2.conv", "bn2": "conv2.bn",
          "conv3": "conv3.conv", "bn3": "conv3.bn", "short_conv": "downsample.conv", "short_bn": "downsample.bn"}
SLOWFAST_DIFFERENCE = (
    "MMAction2's ResNet3dSlowFast is not vidssl's SlowFast: its lateral connections "
    "(slow_path.conv1_lateral, slow_path.layer1..3_lateral) are a bare time-strided convolution "
    "(ConvModule with norm_cfg=None, act_cfg=None), vidssl's (as PySlowFast's and PyTorchVideo's) are "
    "conv -> BN -> ReLU; it also takes one clip and subsamples it inside (resample_rate, speed_ratio). "
    "Convert SlowFast weights from PySlowFast or PyTorchVideo instead")


def render(backbone: str, p: Part) -> str:
    """The MMAction2 key of a part of ``slow_r50``."""
    if p.kind == "stem":
        return f"backbone.conv1.{p.module}.{p.param}"
    return f"backbone.layer{p.stage - 1}.{p.block}.{_BLOCK[p.module]}.{p.param}"


LAYOUT = Layout(
    name="mmaction2", title="MMAction2",
    models={"slow_r50": "ResNet3dSlowOnly (depth 50, slowonly_r50)"},
    render=render,
    heads={"slow_r50": ("cls_head.", "data_preprocessor.")},
    wrapper="state_dict", shortcut="downsample.",
    two_pathway=("backbone.slow_path.", "backbone.fast_path."),
    refused={"slowfast_r50": SLOWFAST_DIFFERENCE, "slowfast_r18": SLOWFAST_DIFFERENCE},
    unwrap_keys=("state_dict",),
)
