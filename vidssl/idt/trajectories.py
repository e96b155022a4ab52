"""Dense sampling, tracking and pruning of Improved Dense Trajectories, vectorised over tracks.

Follows the frame loop of the original ``DenseTrackStab.cpp`` (Wang & Schmid 2013):
for every frame pair and every pyramid level, each live track moves by the flow at its
rounded position, is dropped when it leaves the frame, records the warped flow at that
position and its per-frame HOG/HOF/MBH (from integral histograms), and ends after
``track_length`` (15) frames; then empty cells of the 5 px grid are re-sampled where the
minimum eigenvalue of the structure tensor exceeds 0.001 of its maximum. Ended tracks
are kept unless static, erratic, jumping, or (with camera compensation) following only
the camera.

One output row per trajectory (the original's text layout, 436 float32 columns):
``frame, mean_x, mean_y, std_x, std_y, length, scale, x/W, y/H, t/T, traj(30), hog(96),
hof(108), mbhx(96), mbhy(96)``.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import cv2
import numpy as np

from vidssl.errors import FrameSizeError
from vidssl.idt.camera import CameraMotion, PersonDetector, box_mask
from vidssl.idt.descriptors import frame_descriptors, integral_histograms, pool_time
from vidssl.idt.flow import FlowPyramid, grey_pyramid, pyramid_scales
from vidssl.idt.options import IDTOptions


def dense_sample(grey: np.ndarray, existing: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """New points on the empty cells of the grid (``DenseSample``).

    grey: uint8 [h, w]; existing: float [N, 2] current points of live tracks on this level.
    Returns float32 [M, 2] (x, y) at cell centres (j * 5 + 2, i * 5 + 2), row-major order.
    """
    md = opts.min_distance
    h, w = grey.shape
    gw, gh = w // md, h // md
    eig = cv2.cornerMinEigenVal(grey, 3, ksize=3)
    threshold = float(eig.max()) * opts.quality
    occupied = np.zeros((gh, gw), bool)
    if len(existing):
        x = np.floor(existing[:, 0]).astype(np.int64)
        y = np.floor(existing[:, 1]).astype(np.int64)
        ok = (x < gw * md) & (y < gh * md) & (x >= 0) & (y >= 0)
        occupied[y[ok] // md, x[ok] // md] = True
    off = md // 2
    cy, cx = np.nonzero(~occupied)
    px, py = cx * md + off, cy * md + off
    keep = eig[py, px] > threshold
    return np.stack([px[keep], py[keep]], 1).astype(np.float32)


class _Level:
    """Live tracks of one pyramid level in a slot pool (no per-track Python objects).

    pts [C, L+1, 2], disp [C, L, 2], desc [C, L, D], age [C]; ``order`` lists the live
    slots in creation order (the order of the original's std::list).
    """

    def __init__(self, length: int, dim: int, capacity: int = 256):
        self.length, self.dim = length, dim
        self.pts = np.zeros((capacity, length + 1, 2), np.float32)
        self.disp = np.zeros((capacity, length, 2), np.float32)
        self.desc = np.zeros((capacity, length, dim), np.float32)
        self.age = np.zeros(capacity, np.int64)
        self.order = np.zeros(0, np.int64)
        self.free = list(range(capacity - 1, -1, -1))

    def _grow(self, need: int) -> None:
        cap = len(self.age)
        new = max(2 * cap, cap + need)
        for name in ("pts", "disp", "desc", "age"):
            old = getattr(self, name)
            arr = np.zeros((new,) + old.shape[1:], old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)
        self.free = list(range(new - 1, cap - 1, -1)) + self.free

    def add(self, points: np.ndarray) -> None:
        if len(points) == 0:
            return
        if len(points) > len(self.free):
            self._grow(len(points) - len(self.free))
        slots = np.asarray([self.free.pop() for _ in range(len(points))], np.int64)
        self.pts[slots, 0] = points
        self.age[slots] = 0
        self.order = np.concatenate([self.order, slots])

    def release(self, slots: np.ndarray) -> None:
        self.free.extend(int(s) for s in slots)

    def current(self) -> np.ndarray:
        return self.pts[self.order, self.age[self.order]]


def finish_tracks(pts: np.ndarray, disp: np.ndarray, desc: np.ndarray, frame: int, scale: float,
                  width: int, height: int, opts: IDTOptions) -> np.ndarray:
    """Prune ended tracks and build their output rows (``IsValid``, ``IsCameraMotion``).

    pts: [M, L+1, 2] on the level, disp: [M, L, 2] warped flow, desc: [M, L, D] per-frame
    descriptors. Returns float32 [K, 436] for the K kept tracks; column 9 (t/T) is filled
    by the caller once the number of frames is known (it holds frame - L/2 meanwhile).
    """
    traj = pts.astype(np.float32) * np.float32(scale)
    dsp = disp.astype(np.float32) * np.float32(scale)
    mean = traj.mean(axis=1)  # [M, 2]
    std = np.sqrt(((traj - mean[:, None]) ** 2).mean(axis=1))
    steps = np.diff(traj, axis=1)  # [M, L, 2]
    step_len = np.sqrt((steps ** 2).sum(-1))
    length = step_len.sum(1)
    biggest = step_len.max(1)
    ok = ~((std[:, 0] < opts.min_var) & (std[:, 1] < opts.min_var))  # static
    ok &= ~((std[:, 0] > opts.max_var) | (std[:, 1] > opts.max_var))  # erratic
    ok &= ~((biggest > opts.max_dis) & (biggest > length * 0.7))  # jumping
    if opts.camera:
        mag = np.sqrt((dsp ** 2).sum(-1))
        ok &= mag.max(1) > opts.camera_disp  # follows only the camera
        shape = dsp / np.maximum(mag.sum(1), 1e-12)[:, None, None]
    else:
        shape = steps / np.maximum(length, 1e-12)[:, None, None]
    k = int(ok.sum())
    rows = np.empty((k, opts.row_dim), np.float32)
    if k == 0:
        return rows
    rows[:, 0] = frame
    rows[:, 1:3] = mean[ok]
    rows[:, 3:5] = std[ok]
    rows[:, 5] = length[ok]
    rows[:, 6] = scale
    rows[:, 7] = np.clip(mean[ok, 0] / width, 0, 0.999)
    rows[:, 8] = np.clip(mean[ok, 1] / height, 0, 0.999)
    rows[:, 9] = frame - opts.track_length / 2.0
    rows[:, 10:10 + 2 * opts.track_length] = shape[ok].reshape(k, -1)
    rows[:, 10 + 2 * opts.track_length:] = pool_time(desc[ok], opts)
    return rows


class TrajectoryExtractor:
    """Streaming IDT extractor for one video.

    ``push(grey)`` takes frames one by one (uint8 [H, W], all the same size);
    ``finish()`` returns float32 [N, 436] rows (see module docstring). ``boxes``: optional
    {frame: float [K, 5]} person boxes in the frames' pixels (times ``box_scale``).
    """

    def __init__(self, opts: IDTOptions, boxes: Optional[dict] = None, box_scale: float = 1.0):
        self.opts = opts
        self.boxes = boxes or {}
        self.box_scale = box_scale
        self.detector = PersonDetector() if opts.person == "hog" else None
        self.camera = CameraMotion(opts) if opts.camera else None
        self.frame = 0
        self.rows: list[np.ndarray] = []
        self.dim = opts.cells * 33

    def _mask(self, grey: np.ndarray) -> Optional[np.ndarray]:
        if self.detector is not None:
            return box_mask(grey.shape, self.detector(grey))
        return box_mask(grey.shape, self.boxes.get(self.frame), self.box_scale)

    def _start(self, grey: np.ndarray) -> None:
        h, w = grey.shape
        if min(h, w) < self.opts.patch_size:
            raise FrameSizeError(f"frames of {w}x{h} px: IDT needs a shorter side of at least "
                                 f"{self.opts.patch_size} px (the descriptor patch)")
        self.width, self.height = w, h
        self.scales, self.sizes = pyramid_scales(w, h, self.opts)
        self.flow = FlowPyramid(self.opts, self.scales, self.sizes)
        self.levels = [_Level(self.opts.track_length, self.dim) for _ in self.scales]
        self.prev_pyr = grey_pyramid(grey, self.sizes)
        self.prev_flow_imgs = self.flow.images(grey)
        self.prev_grey = grey
        for level, img in zip(self.levels, self.prev_pyr):
            level.add(dense_sample(img, np.zeros((0, 2), np.float32), self.opts))
        if self.camera is not None:
            self.prev_kp = self.camera.keypoints(grey, self._mask(grey))
        self.gap = 0

    def push(self, grey: np.ndarray) -> None:
        grey = np.ascontiguousarray(grey, dtype=np.uint8)
        if self.frame == 0:
            self._start(grey)
            self.frame = 1
            return
        if grey.shape != (self.height, self.width):
            raise FrameSizeError(f"frame {self.frame} is {grey.shape[1]}x{grey.shape[0]}, "
                                 f"the first was {self.width}x{self.height}")
        o = self.opts
        self.gap += 1
        cur_flow_imgs = self.flow.images(grey)
        flows = self.flow(self.prev_flow_imgs, cur_flow_imgs)
        if self.camera is not None:
            mask = self._mask(grey)
            kp = self.camera.keypoints(grey, mask)
            H = self.camera.homography(self.prev_kp, kp, self.prev_grey, flows[0], mask)
            warped = self.camera.warp(self.prev_grey, grey, H)
            warp_flows = self.flow(self.prev_flow_imgs, self.flow.images(warped))
            self.prev_kp = kp
        else:
            warp_flows = flows
        cur_pyr = grey_pyramid(grey, self.sizes)
        resample = self.gap == o.init_gap
        for k, level in enumerate(self.levels):
            self._track_level(k, level, flows[k], warp_flows[k])
            if resample:
                level.add(dense_sample(cur_pyr[k], level.current(), o))
        if resample:
            self.gap = 0
        self.prev_pyr = cur_pyr
        self.prev_flow_imgs = cur_flow_imgs
        self.prev_grey = grey
        self.frame += 1

    def _track_level(self, k: int, level: _Level, flow: np.ndarray, warp_flow: np.ndarray) -> None:
        o = self.opts
        if len(level.order) == 0:
            return
        h, w = flow.shape[:2]
        slots = level.order
        age = level.age[slots]
        prev = level.pts[slots, age]
        xi = np.clip(np.rint(prev[:, 0]).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(prev[:, 1]).astype(np.int64), 0, h - 1)
        new = prev + flow[yi, xi]
        inside = (new[:, 0] > 0) & (new[:, 0] < w) & (new[:, 1] > 0) & (new[:, 1] < h)
        if not inside.all():
            level.release(slots[~inside])
            slots, age, prev, new, xi, yi = (a[inside] for a in (slots, age, prev, new, xi, yi))
        if len(slots) == 0:
            level.order = slots
            return
        level.disp[slots, age] = warp_flow[yi, xi]
        integral = integral_histograms(self.prev_pyr[k], warp_flow, o)
        level.desc[slots, age] = frame_descriptors(integral, prev, (h, w), o)
        age = age + 1
        level.age[slots] = age
        level.pts[slots, age] = new
        done = age >= o.track_length
        if done.any():
            ended = slots[done]
            self.rows.append(finish_tracks(level.pts[ended], level.disp[ended], level.desc[ended], self.frame,
                                           self.scales[k], self.width, self.height, o))
            level.release(ended)
            slots = slots[~done]
        level.order = slots

    def finish(self) -> np.ndarray:
        """All kept trajectories, float32 [N, 436]; t/T normalised by the frames seen."""
        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, self.opts.row_dim), np.float32)
        if len(rows):
            rows[:, 9] = np.clip(rows[:, 9] / max(self.frame, 1), 0, 0.999)
        if self.opts.max_tracks is not None and len(rows) > self.opts.max_tracks:
            rng = np.random.default_rng(self.opts.seed)
            keep = np.sort(rng.choice(len(rows), self.opts.max_tracks, replace=False))
            rows = rows[keep]
        return rows


def extract_frames(frames: Iterable[np.ndarray], opts: Optional[IDTOptions] = None, boxes: Optional[dict] = None,
                   box_scale: float = 1.0, on_frame: Optional[Callable[[int], None]] = None) -> np.ndarray:
    """IDT of a sequence of grey frames (uint8 [H, W] each) -> float32 [N, 436]."""
    opts = opts or IDTOptions()
    ex = TrajectoryExtractor(opts, boxes, box_scale)
    for i, grey in enumerate(frames):
        if opts.max_frames is not None and i >= opts.max_frames:
            break
        ex.push(grey)
        if on_frame is not None:
            on_frame(1)
    return ex.finish()
