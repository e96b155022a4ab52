"""``vidssl weights import|export``: backbone weights from and to other layouts.

  vidssl weights import SRC --format torchvision --backbone r3d18|r2plus1d18 --out CKPT [key=value ...]
  vidssl weights import SRC --format pyslowfast|pytorchvideo|mmaction2 [--backbone slow_r50|slowfast_r50]
                        --out CKPT [key=value ...]
  vidssl weights import SRC --format safetensors --out CKPT [key=value ...]
  vidssl weights export CKPT --format torchvision|safetensors|pyslowfast|pytorchvideo|mmaction2 --out FILE

``import`` writes a vidssl checkpoint that every ``vidssl eval`` protocol takes; from
torchvision (a ``.pth`` / ``.pt`` state dict or a ``.safetensors`` file of
``r3d_18`` / ``r2plus1d_18``) the 400-way classifier ``fc`` is dropped and the
test-time preprocessing is torchvision's (``key=value`` overrides change it).
PySlowFast (``model_state``), PyTorchVideo and MMAction2 (``state_dict``, ``backbone.*``)
checkpoints of Slow R-50 and SlowFast R-50 (MMAction2: Slow only) convert the same way:
their classifier head is dropped, ``module.`` prefixes are taken off, the backbone is
read from the keys when ``--backbone`` is not given, and the preprocessing is the
published one of those weights.
``export`` writes the backbone of a checkpoint (or run directory): ``torchvision``
as a ``.pth`` state dict in torchvision's key layout without ``fc`` (load it with
``strict=False``), ``pyslowfast`` as ``{"model_state": ...}``, ``pytorchvideo`` as a
plain state dict, ``mmaction2`` as ``{"state_dict": {"backbone.*"}}`` (all without a
head), ``safetensors`` with vidssl's key names and the config in the metadata. See
:mod:`vidssl.engine.weights`, :mod:`vidssl.models.convert` and :mod:`vidssl.models.layouts`.
"""
from __future__ import annotations

import argparse
import sys

# vidssl.engine.weights.FORMATS and the backbones of vidssl.models.convert / layouts, not imported here:
# they load torch
FORMATS = ("torchvision", "safetensors", "pyslowfast", "pytorchvideo", "mmaction2")
CONVERTIBLE = ("r3d18", "r2plus1d18", "slow_r50", "slowfast_r50")


def add_parser(sub) -> None:
    p = sub.add_parser("weights", help="import torchvision / PySlowFast / PyTorchVideo / MMAction2 / safetensors "
                                       "weights, export a checkpoint's backbone",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    wsub = p.add_subparsers(dest="weights_command", metavar="COMMAND")
    wsub.required = True

    i = wsub.add_parser("import", help="weights file -> vidssl checkpoint (for vidssl eval, train.init_from)")
    i.add_argument("src", help="weights file: .pth / .pt / .pyth state dict or checkpoint, or .safetensors")
    i.add_argument("--format", required=True, choices=FORMATS, help="the layout of SRC")
    i.add_argument("--backbone", default=None, choices=CONVERTIBLE,
                   help="the vidssl backbone (needed with --format torchvision: r3d18 <- r3d_18, "
                        "r2plus1d18 <- r2plus1d_18; pyslowfast / pytorchvideo / mmaction2: slow_r50 or "
                        "slowfast_r50, read from the keys when not given)")
    i.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    _allow(i)
    i.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config of the checkpoint, e.g. data.num_frames=8 (default: the test-time preprocessing "
                        "of the format's published weights)")
    i.set_defaults(func=run_import)

    e = wsub.add_parser("export", help="a checkpoint's backbone -> torchvision / PySlowFast / PyTorchVideo / "
                                       "MMAction2 .pth, or .safetensors")
    e.add_argument("checkpoint", help="a vidssl checkpoint (.pt) or run directory")
    e.add_argument("--format", required=True, choices=FORMATS, help="the layout to write")
    e.add_argument("--out", required=True, help="the file to write (.pth / .pyth, or .safetensors)")
    _allow(e)
    e.set_defaults(func=run_export)


def _allow(p) -> None:
    p.add_argument("--allow-different-network", action="store_true",
                   help="convert a network that differs from torchvision's (r3d18 with stem_pool=true) with a "
                        "warning instead of refusing")


def run_import(args) -> int:
    from vidssl.engine.weights import import_weights

    s = import_weights(args.src, args.format, args.out, backbone=args.backbone, overrides=args.overrides,
                       allow_different=args.allow_different_network)
    _warn(s["notes"])
    opts = "".join(f" {k}={v}" for k, v in s["options"].items())
    for line in s.get("read", []):  # where in the file the weights were (model_state, module. prefixes)
        print(f"read: {line}")
    print(f"wrote {s['out']}: backbone {s['backbone']} width {s['width']}{opts}, {s['tensors']} tensors")
    if s["dropped"]:
        shown = ", ".join(f"{k} {v}" for k, v in s["dropped"].items())
        print(f"dropped the classifier ({shown}): vidssl checkpoints hold the backbone only")
    d = s["data"]
    fps = "" if d["fps"] is None else f" ({d['fps']:g} fps)"
    fast = f" (and {d['fast_alpha']} x as many for the Fast pathway)" if d.get("sampler") == "two_rate" else ""
    print(f"test-time input: {d['modality']}, {d['test_clips']} clips x {d.get('test_crops', 1)} crops of "
          f"{d['num_frames']} frames at stride {d['stride']}{fps}{fast}, short side {d['test_short_side']}, "
          f"crop {d['crop_size']} (key=value overrides change it)")
    return 0


def run_export(args) -> int:
    from vidssl.engine.weights import export_weights
    from vidssl.eval.protocols import resolve_checkpoint

    s = export_weights(resolve_checkpoint(args.checkpoint), args.format, args.out,
                       allow_different=args.allow_different_network)
    _warn(s["notes"])
    layout = {"torchvision": "torchvision's key layout, without fc", "safetensors": "vidssl key names",
              "pyslowfast": "PySlowFast's key layout under 'model_state', without the head",
              "pytorchvideo": "PyTorchVideo's key layout, without the head",
              "mmaction2": "MMAction2's backbone.* keys under 'state_dict', without cls_head"}[args.format]
    print(f"wrote {s['out']}: backbone {s['backbone']} width {s['width']}, {s['tensors']} tensors ({layout})")
    return 0


def _warn(notes: list[str]) -> None:
    for note in notes:
        print(f"vidssl weights: warning: {note}", file=sys.stderr)
