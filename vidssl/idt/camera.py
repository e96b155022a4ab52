"""Camera-motion compensation of IDT (Wang & Schmid 2013, Sec. 2; ``DenseTrackStab``).

Per frame pair: keypoint matches (the original used SURF, absent from the pip OpenCV
wheel; ORB or SIFT here) within a 25 px window, plus up to 1000 good-features-to-track
points of the earlier frame moved by the (median-filtered, unwarped) flow; a RANSAC
homography (threshold 1 px) is accepted with > 50 matches and > 25 inliers, else the
identity. The later frame is warped back onto the earlier one; pixels whose source lies
within 5 px of the border keep the earlier frame's value (``MyWarpPerspective``).
Person boxes (or a person detector) mask the keypoints and flow points so that moving
people do not pull the homography (App. A of the paper measures the effect).
"""
from __future__ import annotations

import os
from typing import Optional

import cv2
import numpy as np

from vidssl.errors import BoxFileError, IDTOptionError
from vidssl.idt.options import IDTOptions


def load_boxes(path: str | os.PathLike) -> dict[int, np.ndarray]:
    """Read a box file: one line per frame, ``frame x1 y1 x2 y2 score [x1 y1 x2 y2 score ...]``
    (several boxes per line, or several lines per frame). Returns {frame: float [K, 5]}."""
    boxes: dict[int, list] = {}
    with open(path) as f:
        for num, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if (len(parts) - 1) % 5:
                raise BoxFileError(f"{path}:{num}: expected 'frame x1 y1 x2 y2 score ...' "
                                   f"(1 + 5k numbers), got {len(parts)}")
            try:
                frame = int(float(parts[0]))
                vals = np.asarray([float(p) for p in parts[1:]], np.float32).reshape(-1, 5)
            except ValueError as e:
                raise BoxFileError(f"{path}:{num}: not a number ({e})") from None
            boxes.setdefault(frame, []).append(vals)
    return {k: np.concatenate(v) for k, v in boxes.items()}


def box_mask(shape: tuple[int, int], boxes: Optional[np.ndarray], scale: float = 1.0) -> Optional[np.ndarray]:
    """uint8 mask [h, w]: 1 outside every box, 0 inside (``InitMaskWithBox``); boxes in the
    original video's pixels, ``scale`` maps them to the processed frame. None if no box."""
    if boxes is None or len(boxes) == 0:
        return None
    mask = np.ones(shape, np.uint8)
    h, w = shape
    for x1, y1, x2, y2, _ in boxes:
        a = int(np.clip(np.ceil(x1 * scale), 0, w))
        b = int(np.clip(np.floor(x2 * scale) + 1, 0, w))
        c = int(np.clip(np.ceil(y1 * scale), 0, h))
        d = int(np.clip(np.floor(y2 * scale) + 1, 0, h))
        mask[c:d, a:b] = 0
    return mask


class PersonDetector:
    """OpenCV's HOG people detector (Dalal & Triggs), available in OpenCV builds that ship
    ``cv2.HOGDescriptor`` (the 4.x and 5.1 wheels do)."""

    def __init__(self):
        if not hasattr(cv2, "HOGDescriptor"):
            raise IDTOptionError(
                f"IDT option person='hog' needs cv2.HOGDescriptor, which this OpenCV ({cv2.__version__}) "
                "does not have; give person boxes instead (person='boxes' with a box file)")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, grey: np.ndarray) -> np.ndarray:
        rects, weights = self.hog.detectMultiScale(grey, winStride=(8, 8))
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        r = np.asarray(rects, np.float32)
        return np.concatenate([r[:, :2], r[:, :2] + r[:, 2:], np.asarray(weights, np.float32).reshape(-1, 1)], 1)


class CameraMotion:
    """Homography between consecutive frames and the warped later frame.

    ``keypoints(grey, mask)`` -> (points [K, 2], descriptors) of one frame;
    ``homography(prev_kp, kp, prev_grey, flow0, mask)`` -> float64 [3, 3] (maps the earlier
    frame onto the later one; identity when rejected);
    ``warp(prev_grey, grey, H)`` -> uint8 [h, w] later frame aligned to the earlier one.
    """

    def __init__(self, opts: IDTOptions):
        self.opts = opts
        self._grid = None
        if opts.keypoints == "orb":
            self.detector = cv2.ORB_create(nfeatures=opts.max_keypoints)
            self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        else:
            self.detector = cv2.SIFT_create(nfeatures=opts.max_keypoints)
            self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def keypoints(self, grey: np.ndarray, mask: Optional[np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray]]:
        kps, desc = self.detector.detectAndCompute(grey, mask)
        pts = np.asarray([k.pt for k in kps], np.float32).reshape(-1, 2)
        return pts, desc

    def _keypoint_matches(self, prev, cur) -> tuple[np.ndarray, np.ndarray]:
        (p0, d0), (p1, d1) = prev, cur
        if d0 is None or d1 is None or len(p0) == 0 or len(p1) == 0:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        win = self.opts.match_window
        # windowedMatchingMask: query (later frame) i may match train (earlier frame) j
        # only when they are within `win` px in x and in y
        near = (np.abs(p1[:, None, 0] - p0[None, :, 0]) < win) & (np.abs(p1[:, None, 1] - p0[None, :, 1]) < win)
        matches = self.matcher.match(d1, d0, near.astype(np.uint8))
        if not matches:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        q = np.fromiter((m.queryIdx for m in matches), np.int64, len(matches))
        t = np.fromiter((m.trainIdx for m in matches), np.int64, len(matches))
        return p0[t], p1[q]

    def _flow_matches(self, prev_grey, flow0, mask) -> tuple[np.ndarray, np.ndarray]:
        pts = cv2.goodFeaturesToTrack(prev_grey, self.opts.flow_matches, 0.001, 3, mask=mask)
        if pts is None:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        pts = pts.reshape(-1, 2)
        h, w = prev_grey.shape
        x = np.clip(np.rint(pts[:, 0]).astype(np.int64), 0, w - 1)
        y = np.clip(np.rint(pts[:, 1]).astype(np.int64), 0, h - 1)
        moved = np.stack([x, y], 1).astype(np.float32) + flow0[y, x]
        return pts.astype(np.float32), moved

    def homography(self, prev_kp, kp, prev_grey, flow0, mask) -> np.ndarray:
        a0, a1 = self._keypoint_matches(prev_kp, kp)
        b0, b1 = self._flow_matches(prev_grey, flow0, mask)
        src = np.concatenate([b0, a0])
        dst = np.concatenate([b1, a1])
        H = np.eye(3)
        if len(src) > self.opts.min_matches:
            M, inl = cv2.findHomography(src, dst, cv2.RANSAC, self.opts.ransac_thresh)
            if M is not None and inl is not None and int(inl.sum()) > self.opts.min_inliers:
                H = M
        return H

    def warp(self, prev_grey: np.ndarray, grey: np.ndarray, H: np.ndarray) -> np.ndarray:
        h, w = grey.shape
        # dst(p) = grey(H p): the later frame brought back onto the earlier one
        out = cv2.warpPerspective(grey, H, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if self._grid is None or self._grid[0].shape != (h, w):
            self._grid = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        xs, ys = self._grid
        den = H[2, 0] * xs + H[2, 1] * ys + H[2, 2]
        den = np.where(den == 0, np.inf, den)
        sx = np.rint((H[0, 0] * xs + H[0, 1] * ys + H[0, 2]) / den)
        sy = np.rint((H[1, 0] * xs + H[1, 1] * ys + H[1, 2]) / den)
        m = self.opts.warp_margin
        inside = (sx >= m) & (sx <= w - m) & (sy >= m) & (sy <= h - m)
        return np.where(inside, out, prev_grey)
