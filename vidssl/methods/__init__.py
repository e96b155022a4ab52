"""Methods: one file each, holding the method (a :class:`~vidssl.methods.base.Method`,
e.g. ``SimCLR``) and its config dataclass (``SimCLRConfig``, paper defaults). Names
are registered in :data:`vidssl.registry.METHODS`.
"""
from __future__ import annotations

from vidssl.registry import METHODS, method_class, method_config_class  # noqa: F401 (re-exported)


def build_method(cfg, num_samples: int, num_classes: int, manifest=None):
    """Build the method of ``cfg`` around a fresh backbone.

    Args:
        cfg: a validated :class:`vidssl.config.Config`.
        num_samples: videos in the training manifest (memory banks are [N, D]).
        num_classes: classes of the training manifest (0 when unlabelled).
        manifest: the training manifest (row i = batch index i), passed on to methods
            whose class sets ``takes_manifest = True`` (LA checks per-video feature
            files against it); None when the dataset has none (injected test datasets).
    """
    from vidssl.config import in_channels, method_config
    from vidssl.models import build_backbone

    cls = method_class(cfg.method_name)
    backbone = build_backbone(
        cfg.model.backbone, in_channels=in_channels(cfg.data.modality), width=cfg.model.width, **cfg.model.options
    )
    extra = {"manifest": manifest} if getattr(cls, "takes_manifest", False) else {}
    return cls(method_config(cfg), backbone, num_samples=num_samples, num_classes=num_classes, **extra)
