"""Spatio-temporal action detection, AVA-style (``vidssl eval detect``; large-scale study Sec. 4.6,
Table 10, App. B.3).

    vidssl eval detect --checkpoint RUN_OR_CKPT --train builtin-detect:train --test builtin-detect:test
        [--train-boxes CSV --test-boxes CSV] [--json OUT] [eval.detect_finetune=true] [key=value ...]

The manifests list the videos; the boxes come from AVA-layout CSVs (:mod:`vidssl.data.boxes`):
``eval.detect_train_boxes`` / ``eval.detect_test_boxes`` (``--train-boxes`` / ``--test-boxes``),
by default ``<manifest stem>_boxes.csv`` beside each manifest CSV (as the built-in detection
data, ``builtin-detect:``, has them). The test boxes are numbered with the training classes.

The detector (App. B.3, after SlowFast): the checkpoint's encoder with conv5 at spatial stride 1
and dilation 2 (:func:`vidssl.models.dilation.dilate_conv5`; the same weights), a clip of
``data.num_frames`` x ``data.stride`` centred on each keyframe (:mod:`vidssl.data.keyframes`;
frames resized to ``eval.detect_size``, default ``data.test_short_side``), every box
replicated over time, RoIAlign per frame, temporal average and spatial max pooling, dropout
and a per-class sigmoid classifier trained with binary cross-entropy
(:class:`vidssl.models.roi_head.RoIHead`; training: :mod:`vidssl.eval.detect_train`). The
encoder is frozen unless ``eval.detect_finetune=true`` (App. B.3 fine-tunes it; the frozen
protocol measures the representation as the linear probe does).

Proposals: the detector classifies given boxes, and here they are the ground-truth boxes
(``eval.detect_jitter`` / ``eval.detect_test_jitter`` jitter them), where AVA and App. B.3 use
a person detector's boxes (93.9 AP@50): the mAP here has no person-detection error in it.
Metric: frame-level mAP at IoU 0.5 with all-points interpolated AP (:mod:`vidssl.eval.frame_map`),
per class (``AP``, ``AP_<class>``; None for a class without a test box) and the mean over the
classes with a test box.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidssl.data.boxes import boxes_path, load_boxes
from vidssl.data.keyframes import KeyframeDataset, check_detection_data
from vidssl.errors import BackboneError, ConfigError
from vidssl.eval.detect_train import extract_maps, jitter_boxes, score_proposals, train_finetune, train_frozen
from vidssl.eval.features import EvalContext, load_backbone
from vidssl.eval.frame_map import IOU_THRESHOLD, frame_map
from vidssl.models.dilation import dilate_conv5
from vidssl.models.roi_head import RoIHead

DILATION = 2  # App. B.3: res5 at spatial stride 1, dilation 2


def make_context(checkpoint: str, train_spec: str, test_spec: str, overrides=(), label_column=None,
                 progress: bool = True, recipe: str | None = None) -> EvalContext:
    """The encoder and both manifests, which need no labels (the boxes carry them)."""
    from vidssl.data.builtin import open_manifest
    from vidssl.distributed import pick_device

    backbone, cfg = load_backbone(checkpoint, list(overrides), recipe)
    device = pick_device(cfg.train.device)
    kw = dict(format=cfg.data.format, root=cfg.data.root, split=cfg.data.split,
              label_column=label_column or cfg.data.label_column)
    train = open_manifest(train_spec, subset="train", **kw)
    test = open_manifest(test_spec, subset="test", **kw)
    return EvalContext(checkpoint, backbone.to(device), cfg, train, test, device, progress)


def _boxes_file(given: str, manifest, which: str) -> Path:
    if given:
        return Path(given)
    source = Path(str(manifest.source))
    if source.suffix.lower() != ".csv":
        raise ConfigError(f"no boxes for the {which} videos: give --{which}-boxes (eval.detect_{which}_boxes), "
                          f"an AVA-layout CSV; {source} is not a manifest CSV with a *_boxes.csv beside it")
    return boxes_path(source)


def box_table(ctx: EvalContext, manifest, given: str, which: str, classes=None):
    """The boxes of ``manifest`` (``given`` CSV, or the one beside it), numbered with ``classes``."""
    return load_boxes(_boxes_file(given, manifest, which), manifest, classes=classes, backend=ctx.cfg.data.backend)


def detection_backbone(ctx: EvalContext) -> torch.nn.Module:
    """A copy of the context's encoder with conv5 at stride 1 and dilation 2 (the context keeps its own)."""
    backbone = copy.deepcopy(ctx.backbone)
    if getattr(backbone, "conv5_dilation", 1) == 1:
        try:
            dilate_conv5(backbone, DILATION)
        except BackboneError as err:
            raise ConfigError(f"vidssl eval detect: {err}") from None
    return backbone


@dataclass
class Detector:
    """A trained detector: the dilated encoder, the head, the training classes and what training saw."""

    backbone: torch.nn.Module
    head: RoIHead
    classes: list[str]
    size: int
    losses: list[float]
    train_keyframes: int
    train_boxes: int


def fit(ctx: EvalContext, table=None) -> Detector:
    """Train the detection head (and with ``eval.detect_finetune`` the encoder) on the training boxes
    (``table``, default: read from ``eval.detect_train_boxes`` or beside the training manifest)."""
    e, d, seed = ctx.cfg.eval, ctx.cfg.data, ctx.cfg.train.seed
    check_detection_data(d)
    table = table if table is not None else box_table(ctx, ctx.train, e.detect_train_boxes, "train")
    size = e.detect_size or d.test_short_side
    backbone = detection_backbone(ctx).to(ctx.device)
    torch.manual_seed(seed)  # the head's weights and its dropout
    head = RoIHead(backbone.feat_dim, table.num_classes, dropout=e.detect_dropout)
    if e.detect_finetune:
        train_set = KeyframeDataset(ctx.train, table, d, size, flip=None if d.augment.flip else False)
        losses = train_finetune(backbone, head, train_set, e, seed, ctx.device, d.workers, ctx.progress)
    else:
        train_set = KeyframeDataset(ctx.train, table, d, size, flip=False)
        maps = {flip: extract_maps(backbone, train_set.with_flip(flip), e.batch_size, d.workers, ctx.device,
                                   f"train keyframes{' (mirrored)' * flip}", ctx.progress)
                for flip in ((False, True) if d.augment.flip else (False,))}
        losses = train_frozen(head, maps, train_set, e, seed, ctx.device, ctx.progress)
    return Detector(backbone, head, table.classes, size, losses, len(train_set), len(table))


def score(ctx: EvalContext, det: Detector, manifest, table) -> dict:
    """Frame mAP at IoU 0.5 of ``det`` on the keyframes of ``table`` (numbered with ``det.classes``)."""
    e, d, seed = ctx.cfg.eval, ctx.cfg.data, ctx.cfg.train.seed
    test_set = KeyframeDataset(manifest, table, d, det.size, flip=False)
    maps = extract_maps(det.backbone, test_set, e.batch_size, d.workers, ctx.device, "test keyframes", ctx.progress)
    g = torch.Generator().manual_seed(seed + 1)  # the test proposals' jitter, fixed per seed
    gt = [test_set.boxes[rows] for _, _, rows in test_set.keyframes]
    proposals = [jitter_boxes(b, e.detect_test_jitter, g) for b in gt]
    scores = score_proposals(det.head, maps, proposals, ctx.device)
    labels = [test_set.targets[rows].numpy() for _, _, rows in test_set.keyframes]
    result = frame_map([p.numpy() for p in proposals], [s.numpy() for s in scores], [b.numpy() for b in gt], labels)
    ap = {c: (None if np.isnan(v) else float(v)) for c, v in zip(det.classes, result["AP"])}
    return {
        "mAP": result["mAP"],
        "classes_scored": result["classes_scored"],
        "num_classes": len(det.classes),
        **{f"AP_{c}": v for c, v in ap.items()},
        "AP": ap,
        "iou_threshold": IOU_THRESHOLD,
        "proposals": "ground truth" + (f", jittered {e.detect_test_jitter:g}" if e.detect_test_jitter > 0 else ""),
        "encoder": "fine-tuned" if e.detect_finetune else "frozen",
        "epochs": e.detect_epochs,
        "final_loss": det.losses[-1],
        "train_keyframes": det.train_keyframes,
        "train_boxes": det.train_boxes,
        "test_keyframes": len(test_set),
        "test_boxes": len(table),
        "input_size": det.size,
        "map_size": "x".join(str(v) for v in maps.shape[-2:]),
    }


def evaluate(ctx: EvalContext) -> dict:
    e = ctx.cfg.eval
    check_detection_data(ctx.cfg.data)
    train = box_table(ctx, ctx.train, e.detect_train_boxes, "train")
    test = box_table(ctx, ctx.test, e.detect_test_boxes, "test", classes=train.classes)  # checked before training
    return score(ctx, fit(ctx, train), ctx.test, test)
