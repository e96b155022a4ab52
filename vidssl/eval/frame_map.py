"""Frame-level mean average precision at IoU 0.5: AVA's detection metric.

AVA (Gu et al. 2018) scores action detection per keyframe with the PASCAL VOC protocol of the
TF Object Detection API (``PascalDetectionEvaluator``, matching IoU 0.5), and reports the mean
over classes of the per-class AP (large-scale study Sec. 4.6, Table 10; App. B.3: "mean Average
Precision (mAP) on 60 classes"). For each class k:

1. detections: every detected box of every keyframe with its score for k; ground truth: the
   boxes of every keyframe that carry label k;
2. matching, per keyframe: detections in decreasing score, each compared with the ground-truth
   box of largest IoU; it is a true positive when that IoU is >= 0.5 and that box is not matched
   yet (then it is), else a false positive (VOC's rule: a detection whose best box is taken
   does not fall back to another one);
3. the detections of all keyframes ranked by score; precision and recall after each score
   (recall over all ground-truth boxes of k, missed ones included); tied scores enter together,
   at the precision and recall after the whole tie (as scikit-learn does; the TF code ranks ties
   in an arbitrary order);
4. AP: **all-points interpolation**, VOC 2010 onwards and the TF API's
   ``compute_average_precision``: precision made non-increasing from the right
   (``p(r) = max over r' >= r``), then ``sum (r_n - r_{n-1}) p(r_n)``. ``interpolation="none"``
   gives the raw step sum (scikit-learn's ``average_precision_score`` when every ground-truth
   box is detected and matching is trivial). Not VOC 2007's 11-point rule.

A class without a ground-truth box has no AP (NaN) and is left out of the mean;
``classes_scored`` counts the others.

Here the detections are the ground-truth boxes themselves (optionally jittered) scored by the
head, as the detector classifies given boxes: AVA's protocol (and App. B.3) uses a person
detector's boxes instead, so recall here is only lost to jitter.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLD = 0.5
INTERPOLATIONS = ("all_points", "none")


def box_iou(a, b) -> np.ndarray:
    """IoU ``[N, M]`` of boxes ``a [N, 4]`` and ``b [M, 4]`` (x1, y1, x2, y2); 0 where the union is empty."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_detections(boxes, scores, gt_boxes, iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """True positives ``bool [D]`` (in the given order) of detections ``boxes [D, 4]`` with
    ``scores [D]`` against ``gt_boxes [G, 4]`` of one keyframe and class (step 2)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    tp = np.zeros(len(scores), bool)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if len(gt_boxes) == 0 or len(scores) == 0:
        return tp
    iou = box_iou(boxes, gt_boxes)
    best = iou.argmax(1)
    taken = np.zeros(len(gt_boxes), bool)
    for d in np.argsort(-scores, kind="mergesort"):
        g = best[d]
        if iou[d, g] >= iou_threshold and not taken[g]:
            tp[d] = taken[g] = True
    return tp


def ap_from_matches(scores, tp, num_gt: int, interpolation: str = "all_points") -> float:
    """AP of ranked detections (``scores [D]``, true positives ``tp [D]``) against ``num_gt``
    ground-truth boxes (steps 3-4); NaN when ``num_gt`` is 0."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r} (allowed: {', '.join(INTERPOLATIONS)})")
    if num_gt == 0:
        return float("nan")
    s = np.asarray(scores, np.float64).reshape(-1)
    t = np.asarray(tp, bool).reshape(-1)
    if len(s) == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last detection of each group of tied scores
    tps, fps = np.cumsum(t)[last], np.cumsum(~t)[last]
    precision = tps / (tps + fps)
    recall = tps / num_gt
    if interpolation == "all_points":
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def frame_average_precisions(det_boxes: Sequence, det_scores: Sequence, gt_boxes: Sequence, gt_labels: Sequence,
                             iou_threshold: float = IOU_THRESHOLD, interpolation: str = "all_points") -> np.ndarray:
    """Per-class AP ``[K]`` over keyframes: for keyframe i, detections ``det_boxes[i] [D_i, 4]`` with
    ``det_scores[i] [D_i, K]``, ground truth ``gt_boxes[i] [G_i, 4]`` with 0/1 ``gt_labels[i] [G_i, K]``."""
    if not (len(det_boxes) == len(det_scores) == len(gt_boxes) == len(gt_labels)):
        raise ValueError("frame_average_precisions: one entry per keyframe in each of the four lists")
    k = next((np.asarray(x).shape[1] for x in list(det_scores) + list(gt_labels) if np.asarray(x).ndim == 2), 0)
    scores, tps, num_gt = [[] for _ in range(k)], [[] for _ in range(k)], np.zeros(k, np.int64)
    for boxes, sc, gb, gl in zip(det_boxes, det_scores, gt_boxes, gt_labels):
        sc = np.asarray(sc, np.float64).reshape(-1, k)
        gl = np.asarray(gl).reshape(-1, k) > 0.5
        gb = np.asarray(gb, np.float64).reshape(-1, 4)
        for c in range(k):
            positives = gb[gl[:, c]]
            num_gt[c] += len(positives)
            scores[c].append(sc[:, c])
            tps[c].append(match_detections(boxes, sc[:, c], positives, iou_threshold))
    return np.array([ap_from_matches(np.concatenate(scores[c]) if scores[c] else [],
                                     np.concatenate(tps[c]) if tps[c] else [], int(num_gt[c]), interpolation)
                     for c in range(k)])


def frame_map(det_boxes, det_scores, gt_boxes, gt_labels, iou_threshold: float = IOU_THRESHOLD,
              interpolation: str = "all_points") -> dict:
    """``{"mAP", "classes_scored", "AP" [K]}``: the mean AP of the classes with a ground-truth box."""
    ap = frame_average_precisions(det_boxes, det_scores, gt_boxes, gt_labels, iou_threshold, interpolation)
    scored = ~np.isnan(ap)
    return {"mAP": float(ap[scored].mean()) if scored.any() else float("nan"), "classes_scored": int(scored.sum()),
            "AP": ap}
