"""vidssl: self-supervised video representation learning and its evaluation.

The notebook API, imported on first use (``import vidssl`` itself loads nothing heavy):

- ``vidssl.load_encoder(run_or_checkpoint, overrides=(), device="cpu", recipe=None)`` ->
  :class:`vidssl.eval.encoder.Encoder` (``embed(video) -> [D]``, ``embed_batch(paths) -> [N, D]``);
- ``vidssl.Encoder``;
- ``vidssl.build_backbone(name, in_channels=3, width=64, **options)`` (:mod:`vidssl.models`).

The protocols on arrays are in :mod:`vidssl.eval.arrays`.
"""

__version__ = "0.1.0"
__all__ = ["Encoder", "build_backbone", "load_encoder"]


def __getattr__(name: str):
    if name in ("load_encoder", "Encoder"):
        from vidssl.eval import encoder as module
    elif name == "build_backbone":
        from vidssl import models as module
    else:
        raise AttributeError(f"module 'vidssl' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
