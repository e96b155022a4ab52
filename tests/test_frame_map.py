"""Box IoU and frame-level mAP at IoU 0.5 (AVA's protocol) on hand-made cases, and against
scikit-learn's average precision where the matching is trivial."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from vidssl.eval.frame_map import ap_from_matches, box_iou, frame_average_precisions, frame_map, match_detections


def test_box_iou_hand_made_cases():
    a = [0.0, 0.0, 2.0, 2.0]
    cases = [
        ([5.0, 5.0, 6.0, 6.0], 0.0),  # disjoint
        ([0.5, 0.5, 1.5, 1.5], 1.0 / 4.0),  # nested: the inner area over the outer
        ([0.0, 0.0, 2.0, 2.0], 1.0),  # identical
        ([2.0, 0.0, 4.0, 2.0], 0.0),  # touching along an edge
        ([2.0, 2.0, 3.0, 3.0], 0.0),  # touching at a corner
        ([1.0, 0.0, 3.0, 2.0], 2.0 / 6.0),  # half overlapping: 2 / (4 + 4 - 2)
        ([1.0, 1.0, 1.0, 3.0], 0.0),  # zero width: no area, IoU 0 (not NaN)
    ]
    got = box_iou([a], [b for b, _ in cases])
    assert got.shape == (1, len(cases))
    np.testing.assert_allclose(got[0], [v for _, v in cases], rtol=0, atol=1e-12)
    assert box_iou([[0, 0, 1, 1]], [[0, 0, 0, 0]])[0, 0] == 0.0  # both empty-ish: no division by zero
    assert np.array_equal(box_iou(np.zeros((0, 4)), [a]).shape, (0, 1))
    # symmetric
    rng = np.random.default_rng(0)
    x = np.sort(rng.random((6, 2, 2)), axis=1).transpose(0, 2, 1).reshape(6, 4)[:, [0, 2, 1, 3]]
    np.testing.assert_allclose(box_iou(x, x[::-1]), box_iou(x[::-1], x).T)


def test_matching_is_greedy_by_score_and_each_box_matched_once():
    gt = [[0, 0, 10, 10], [20, 0, 30, 10]]
    dets = [[0, 0, 10, 10],  # the first box exactly
            [1, 0, 11, 10],  # also on the first box (IoU 0.82), lower score: a duplicate
            [20, 0, 30, 10],
            [50, 50, 60, 60]]  # on nothing
    tp = match_detections(dets, [0.9, 0.8, 0.3, 0.95], gt)
    assert tp.tolist() == [True, False, True, False]
    # the duplicate scoring higher takes the box, the exact one becomes the false positive
    assert match_detections(dets, [0.8, 0.9, 0.3, 0.1], gt).tolist() == [False, True, True, False]
    # VOC's rule: a detection whose best box is taken does not fall back to another one it overlaps
    gt2 = [[0, 0, 10, 10], [4, 0, 14, 10]]
    det3 = [[0, 0, 10, 10], [1, 0, 11, 10]]  # det 1: IoU 0.82 with box 0 (taken), 0.54 with box 1
    assert box_iou(det3, gt2)[1, 1] >= 0.5
    assert match_detections(det3, [0.9, 0.8], gt2).tolist() == [True, False]
    # the threshold is inclusive: IoU exactly 0.5 matches
    half = [[0, 0, 10, 10]], [[0, 0, 10, 5]]
    assert box_iou(*half)[0, 0] == 0.5 and match_detections(half[0], [1.0], half[1]).tolist() == [True]
    assert match_detections([[0, 0, 10, 10]], [1.0], [[0, 0, 10, 4.9]]).tolist() == [False]


def test_interpolated_and_raw_ap_by_hand():
    # ranking TP, FP, FP, TP, TP over 3 boxes: precision 1, 1/2, 1/3, 1/2, 3/5 at recall 1/3, 1/3, 1/3, 2/3, 1
    scores, tp = [0.9, 0.8, 0.7, 0.6, 0.5], [True, False, False, True, True]
    assert ap_from_matches(scores, tp, 3, "none") == pytest.approx((1 + 1 / 2 + 3 / 5) / 3)
    # all points: the precision at recall 2/3 is raised to the 3/5 that comes later
    assert ap_from_matches(scores, tp, 3, "all_points") == pytest.approx((1 + 3 / 5 + 3 / 5) / 3)
    # a box never detected caps the recall: 4 boxes
    assert ap_from_matches(scores, tp, 4, "all_points") == pytest.approx((1 + 3 / 5 + 3 / 5) / 4)
    # tied scores enter together: [TP, FP] tied first, then TP -> precision 1/2 at recall 1/2, 2/3 at 1
    assert ap_from_matches([0.5, 0.5, 0.1], [True, False, True], 2, "none") == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert np.isnan(ap_from_matches([0.3], [False], 0))
    assert ap_from_matches([], [], 2) == 0.0
    with pytest.raises(ValueError, match="interpolation"):
        ap_from_matches([1.0], [True], 1, "11_point")


def _grid_keyframes(rng, n_frames: int, k: int):
    """Keyframes of 1-4 disjoint boxes each (a grid), random label sets and scores."""
    boxes, labels, scores = [], [], []
    for _ in range(n_frames):
        g = int(rng.integers(1, 5))
        cells = rng.permutation(9)[:g]
        b = np.array([[c % 3, c // 3, c % 3 + 0.8, c // 3 + 0.8] for c in cells]) / 3
        boxes.append(b)
        labels.append((rng.random((g, k)) < 0.4).astype(np.float32))
        scores.append(rng.random((g, k)))
    return boxes, labels, scores


@pytest.mark.parametrize("seed", range(4))
def test_ground_truth_proposals_give_sklearn_ap(seed):
    """Detections = the ground-truth boxes, disjoint: each is matched to its own box exactly when
    it carries the class, so the raw AP is scikit-learn's over all (box, class) pairs."""
    rng = np.random.default_rng(seed)
    k = 5
    boxes, labels, scores = _grid_keyframes(rng, 30, k)
    for lab in labels:
        lab[:, 4] = 0  # a class without a box: no AP, left out of the mean
    ap = frame_average_precisions(boxes, scores, boxes, labels, interpolation="none")
    y, s = np.concatenate(labels), np.concatenate(scores)
    assert np.isnan(ap[4])
    want = [average_precision_score(y[:, c], s[:, c]) for c in range(4)]
    np.testing.assert_allclose(ap[:4], want, rtol=0, atol=1e-12)
    interp = frame_map(boxes, scores, boxes, labels)
    assert interp["classes_scored"] == 4
    assert np.all(interp["AP"][:4] >= ap[:4] - 1e-12)  # the envelope never lowers precision
    assert interp["mAP"] == pytest.approx(np.nanmean(interp["AP"]))
    # perfect scores (1 for a box's labels, 0 otherwise) give AP 1 for every class
    perfect = frame_map(boxes, labels, boxes, labels)
    np.testing.assert_allclose(perfect["AP"][:4], 1.0)


def test_frame_map_on_a_hand_made_scene():
    """Two keyframes, one class: a missed box, a duplicate, a box off by too much, a good one."""
    gt = [np.array([[0.0, 0.0, 0.4, 0.4], [0.5, 0.5, 1.0, 1.0]]), np.array([[0.1, 0.1, 0.3, 0.5]])]
    lab = [np.array([[1.0], [1.0]]), np.array([[1.0]])]
    det = [np.array([[0.0, 0.0, 0.4, 0.4],  # TP (score 0.9)
                     [0.02, 0.0, 0.42, 0.4],  # duplicate of the first: FP (0.8)
                     [0.5, 0.5, 0.7, 0.7]]),  # IoU 0.16 with the second box: FP (0.7)
           np.array([[0.1, 0.1, 0.3, 0.5]])]  # TP (0.6)
    sc = [np.array([[0.9], [0.8], [0.7]]), np.array([[0.6]])]
    # ranked TP, FP, FP, TP of 3 boxes: precision 1, 1/2, 1/3, 1/2 at recall 1/3, 1/3, 1/3, 2/3
    out = frame_map(det, sc, gt, lab)
    assert out["AP"][0] == pytest.approx((1 + 1 / 2) / 3)
    assert frame_map(det, sc, gt, lab, interpolation="none")["AP"][0] == pytest.approx((1 + 1 / 2) / 3)
    # boxes of another class do not count: with the second keyframe's box relabelled, 2 boxes left
    lab2 = [lab[0], np.array([[0.0]])]
    assert frame_map(det, sc, gt, lab2)["AP"][0] == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="one entry per keyframe"):
        frame_map(det, sc, gt[:1], lab)
