"""What every backbone shares: the stage-wise forward, input checks and initialisation.

A backbone maps clips ``x: [N, C, T, H, W]`` to pooled features ``[N, feat_dim]``
(global average pool over T, H, W after the last stage), or, with
``return_stages=True``, to ``(pooled, {stage_name: feature map [N, C_s, T_s, H_s, W_s]})``
so that evaluations can read out from intermediate stages (VIE reads out from
conv3 / conv4 / conv5, Sec. 4 and Table 1 of the VIE paper).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from vidssl.errors import BackboneError

STAGE_NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5"]


def check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BackboneError(f"backbone option {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise BackboneError(f"backbone option {name!r} must be true or false, got {value!r}")
    return value


def check_clip(x: torch.Tensor, in_channels: int, who: str) -> None:
    """Raise a clear error unless ``x`` is a float clip batch ``[N, in_channels, T, H, W]``."""
    if not isinstance(x, torch.Tensor):
        raise BackboneError(f"{who} expects a tensor [N, C, T, H, W], got {type(x).__name__}")
    if x.dim() != 5:
        raise BackboneError(f"{who} expects clips [N, C, T, H, W], got a tensor of shape {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise BackboneError(
            f"{who} was built for {in_channels} input channels but got clips of shape {tuple(x.shape)} "
            f"(C = {x.shape[1]}); set in_channels (rgb/diff: 3, flow: 2)"
        )
    if not x.is_floating_point():
        raise BackboneError(f"{who} expects floating-point clips, got {x.dtype}")


def init_weights(module: nn.Module, zero_init_residual: bool = False) -> None:
    """Kaiming-normal convolutions (fan_out, as torchvision's ResNets), BN weight 1 and bias 0.

    With ``zero_init_residual`` the last BN of every residual block (marked by the
    block's ``last_bn`` attribute) starts at 0, so every block starts as the identity
    (Goyal et al., "Accurate, large minibatch SGD", Sec. 5.1).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in module.modules():
            last = getattr(m, "last_bn", None)
            if isinstance(last, nn.modules.batchnorm._BatchNorm):
                nn.init.zeros_(last.weight)


class StagedBackbone(nn.Module):
    """A backbone that is a chain of five stages, ``self.stages[name]`` for name in conv1..conv5.

    Subclasses fill ``self.stages`` (an ``nn.ModuleDict`` in order) and set ``feat_dim``.
    Each stage maps a 5-D map to a 5-D map ``[N, C_s, T_s, H_s, W_s]``. Stage maps may be
    channels-last-3d strided (see ``channels_last``): use ``reshape``/``flatten``, not ``view``.
    """

    stage_names: list[str] = STAGE_NAMES

    def __init__(self, in_channels: int, width: int, channels_last: bool = False):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.width = check_int("width", width)
        # CPU speed only, no effect on the weights or the maths: oneDNN's 3D convolutions run
        # 1.3x faster (training r3d18, width 16, 2 cores; benchmarks/bench_backbones.py) on
        # channels-last-3d maps, and every conv/BN/pool keeps the layout it is given. CUDA
        # inputs keep their layout (not measured there).
        self.channels_last = check_bool("channels_last", channels_last)
        self.feat_dim: int = 0
        self.stages = nn.ModuleDict()

    def forward(self, x: torch.Tensor, return_stages: bool = False):
        """x: [N, C, T, H, W] -> pooled [N, feat_dim] (or (pooled, {stage: map}))."""
        check_clip(x, self.in_channels, type(self).__name__)
        if self.channels_last and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        maps = OrderedDict()
        for name, stage in self.stages.items():
            x = stage(x)
            if return_stages:
                maps[name] = x
        pooled = x.mean(dim=(2, 3, 4))  # global average pool over T, H, W: [N, feat_dim]
        return (pooled, maps) if return_stages else pooled


def stage_modules(backbone: nn.Module, name: str) -> list[nn.Module]:
    """The modules of stage ``name`` (conv1 .. conv5) of any backbone of :mod:`vidssl.models`.

    Staged 3D nets and the 2D ResNet: ``backbone.stages[name]``; TRN: its 2D net's stage;
    SlowFast: the Slow and Fast stage and the lateral connection out of it; a two-stream model:
    those of both streams.
    """
    if hasattr(backbone, "stages") and name in backbone.stages:
        return [backbone.stages[name]]
    if hasattr(backbone, "single") and hasattr(backbone, "multi"):  # two-stream (models/two_stream.py)
        return stage_modules(backbone.single, name) + stage_modules(backbone.multi, name)
    if hasattr(backbone, "cnn"):  # TRN: a 2D ResNet under a relation head
        return stage_modules(backbone.cnn, name)
    if hasattr(backbone, "slow") and hasattr(backbone, "fast"):  # SlowFast
        mods = [backbone.slow[name], backbone.fast[name]]
        return mods + ([backbone.lateral[name]] if name in backbone.lateral else [])
    raise BackboneError(f"cannot find stage {name!r} in backbone {type(backbone).__name__} "
                      f"(stages: {', '.join(getattr(backbone, 'stage_names', []))})")
