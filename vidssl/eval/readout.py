"""Linear read-outs from several layers (``vidssl eval readout``; VIE Sec. 4, Table 1).

VIE measures a frozen encoder by "training linear-softmax readouts from different layers
of the fixed model" (conv3, conv4, conv5), the features of a multi-frame model averaged
over time first so that it gets no more read-out weights than a single-frame one. Here
every layer of ``eval.readout_layers`` is read out with the ``time_grid`` read-out
(:mod:`vidssl.eval.pooling`: the mean over T, an ``eval.readout_grid`` spatial grid, by
default about 9,000 features per layer at w = 64) and probed with the linear protocol
(:mod:`vidssl.eval.linear`: its keys, multi-view testing, mAP on multi-label manifests).
All layers of a split come from one pass over its videos; each is cached on its own.
"""
from __future__ import annotations

from vidssl.errors import ConfigError
from vidssl.eval import linear
from vidssl.eval.features import EvalContext
from vidssl.eval.pooling import readout_grid

POOL = "time_grid"  # VIE's read-out


def check_layers(ctx: EvalContext, layers: list[str]) -> None:
    """Raise a one-line :class:`ConfigError` unless every layer is a stage of the backbone."""
    stages = list(getattr(ctx.backbone, "stage_names", []))
    bad = [name for name in layers if name not in stages]
    if bad:
        raise ConfigError(f"bad value for 'eval.readout_layers': {bad[0]!r} (allowed: {', '.join(stages)})")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"bad value for 'eval.readout_layers': {layers} (a stage twice)")


def evaluate(ctx: EvalContext) -> dict:
    """The linear probe at every layer of ``eval.readout_layers``.

    Returns ``{"readout_pool", "layers": {layer: {"grid", "features", **linear metrics}},
    "<layer>_<metric>": ...}`` (the flat keys repeat the numbers of ``layers``).
    """
    e = ctx.cfg.eval
    layers = list(e.readout_layers)
    check_layers(ctx, layers)
    out, flat = {}, {}
    for name, kid in ctx.layer_contexts(layers, POOL, e.readout_grid).items():
        metrics = linear.evaluate(kid)
        dim = int(kid.features("train")[0].shape[-1])
        out[name] = {"grid": readout_grid(name, e.readout_grid), "features": dim, **metrics}
        flat.update({f"{name}_{k}": v for k, v in out[name].items()})
    return {"readout_pool": POOL, "layers": out, **flat}


def layer_table(metrics: dict) -> list[str]:
    """The two lines of a read-out result: the layers, and each layer's top-1 (mAP on
    multi-label manifests), e.g. ``layer  conv3   conv4`` / ``top1   0.4062  0.5312``."""
    layers = metrics.get("layers") or {}
    if not layers:
        return []
    key = "mAP" if any("mAP" in m for m in layers.values()) else "top1"
    cells = {name: f"{m[key]:.4f}" for name, m in layers.items()}
    widths = {name: max(len(name), len(c)) for name, c in cells.items()}
    head = max(len("layer"), len(key))
    rows = [f"{'layer':<{head}}  " + "  ".join(f"{n:<{widths[n]}}" for n in layers),
            f"{key:<{head}}  " + "  ".join(f"{cells[n]:<{widths[n]}}" for n in layers)]
    return [row.rstrip() for row in rows]
