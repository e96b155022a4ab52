"""Spatial pyramid and optical flow on every level, as in ``DenseTrackStab``.

The original computes Farneback flow once per frame pair for all trajectory scales:
coarse to fine, each level initialised with the up-sampled flow of the level above
(x sqrt(2)), 2 iterations with a Gaussian window of 10, polynomial expansion n = 7,
sigma = 1.5, and a 5x5 median on each flow channel after each level. We run OpenCV's
``calcOpticalFlowFarneback`` on one level at a time with ``OPTFLOW_USE_INITIAL_FLOW``,
which gives the per-level flows the trajectories of each scale need (the stock call
returns only the finest one).

Shapes: grey images ``uint8 [h_k, w_k]``, flows ``float32 [h_k, w_k, 2]`` (dx, dy in
pixels of level k).
"""
from __future__ import annotations

import cv2
import numpy as np

from vidssl.idt.options import IDTOptions


def pyramid_scales(width: int, height: int, opts: IDTOptions) -> tuple[list[float], list[tuple[int, int]]]:
    """Scales (1, sqrt 2, 2, ...) and level sizes (w, h) of ``InitPry``.

    A level is added while min(w, h) / sqrt(2)^k >= patch_size (32), at most
    ``scale_num`` (8) levels, at least one. Sizes are rounded like ``cvRound``.
    """
    min_size = float(min(width, height))
    n = 0
    while min_size >= opts.patch_size:
        min_size /= opts.scale_stride
        n += 1
    n = max(1, min(opts.scale_num, n))
    scales = [1.0]
    for _ in range(1, n):
        # float32 products like the original (std::vector<float> fscales)
        scales.append(float(np.float32(scales[-1]) * np.float32(opts.scale_stride)))
    sizes = [(width, height)] + [(int(np.rint(width / s)), int(np.rint(height / s))) for s in scales[1:]]
    return scales, sizes


def grey_pyramid(grey: np.ndarray, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Trajectory pyramid: each level resized (bilinear) from the one above (original)."""
    out = [grey]
    for size in sizes[1:]:
        out.append(cv2.resize(out[-1], size, interpolation=cv2.INTER_LINEAR))
    return out


def flow_images(grey: np.ndarray, scales: list[float], sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Images Farneback sees on each level: the full frame blurred with
    sigma = (scale - 1) / 2 and resized (``FarnebackPolyExpPyr``); level 0 is the frame
    itself (OpenCV applies the level-0 3x3 blur inside the call)."""
    out = [grey]
    f = grey.astype(np.float32)
    for s, size in zip(scales[1:], sizes[1:]):
        sigma = (s - 1.0) * 0.5
        k = max(int(np.rint(sigma * 5)) | 1, 3)
        img = cv2.resize(cv2.GaussianBlur(f, (k, k), sigma, sigmaY=sigma), size, interpolation=cv2.INTER_LINEAR)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


def median_flow(flow: np.ndarray, ksize: int) -> np.ndarray:
    """Median filter of each flow channel (``MedianBlurFlow``), float32 [h, w, 2]."""
    if ksize <= 1:
        return flow
    fx, fy = cv2.split(flow)
    return cv2.merge((cv2.medianBlur(fx, ksize), cv2.medianBlur(fy, ksize)))


class FlowPyramid:
    """Optical flow on every pyramid level between two frames.

    ``__call__(prev_imgs, cur_imgs) -> list of float32 [h_k, w_k, 2]`` where the image
    lists come from :func:`flow_images` (Farneback) or hold the full frame first (DIS).
    """

    def __init__(self, opts: IDTOptions, scales: list[float], sizes: list[tuple[int, int]]):
        self.opts = opts
        self.scales = scales
        self.sizes = sizes
        self.flags = cv2.OPTFLOW_USE_INITIAL_FLOW | cv2.OPTFLOW_FARNEBACK_GAUSSIAN
        self._dis = None
        if opts.flow == "dis":
            preset = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                      "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[opts.dis_preset]
            self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, prev_imgs: list[np.ndarray], cur_imgs: list[np.ndarray]) -> list[np.ndarray]:
        if self._dis is not None:
            return self._dis_pyramid(prev_imgs[0], cur_imgs[0])
        o = self.opts
        n = len(self.sizes)
        flows: list = [None] * n
        flow = None
        for k in range(n - 1, -1, -1):
            w, h = self.sizes[k]
            if flow is None:
                init = np.zeros((h, w, 2), np.float32)
            else:
                ratio = self.scales[k + 1] / self.scales[k]
                init = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(ratio)
            flow = cv2.calcOpticalFlowFarneback(prev_imgs[k], cur_imgs[k], init, 0.5, 0, o.winsize,
                                                o.iterations, o.poly_n, o.poly_sigma, self.flags)
            flow = median_flow(flow, o.median_ksize)
            flows[k] = flow
        return flows

    def _dis_pyramid(self, prev: np.ndarray, cur: np.ndarray) -> list[np.ndarray]:
        flow0 = median_flow(self._dis.calc(prev, cur, None), self.opts.median_ksize)
        out = [flow0]
        for s, size in zip(self.scales[1:], self.sizes[1:]):
            out.append(cv2.resize(flow0, size, interpolation=cv2.INTER_AREA) * np.float32(1.0 / s))
        return out

    def images(self, grey: np.ndarray) -> list[np.ndarray]:
        """The per-level inputs this flow needs for one frame."""
        if self._dis is not None:
            return [grey]
        return flow_images(grey, self.scales, self.sizes)
