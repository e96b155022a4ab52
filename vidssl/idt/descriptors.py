"""HOG / HOF / MBHx / MBHy from per-frame integral histograms, for all tracks at once.

As in the original ``Descriptors.h``: the gradient (HOG: [-1 0 1] Sobel of the grey frame;
MBH: Sobel of each warped-flow component) or the flow vector itself (HOF) votes with its
magnitude into the two nearest of 8 orientation bins (linear split); HOF has a 9th
"no motion" bin that gets 1 when the magnitude is <= min_flow (0.4). Each frame gives one
integral histogram ``[h + 1, w + 1, 33]`` (8 + 9 + 8 + 8 channels); the descriptor of a
track point is read from the 32x32 patch around it (clamped to the image), split into
2x2 cells: max(sum, 0) + epsilon per bin, L1-normalised over the 2x2xbins vector of one
type, then square-rooted (RootSIFT-like). :func:`pool_time` averages the per-frame
vectors over nt_cell = 3 temporal cells of 5 frames (``PrintDesc``).
"""
from __future__ import annotations

import cv2
import numpy as np

from vidssl.idt.options import IDTOptions

#: channels of the combined integral histogram, in order
BINS = {"hog": 8, "hof": 9, "mbhx": 8, "mbhy": 8}


def orientation_histogram(dx: np.ndarray, dy: np.ndarray, nbins: int, hof: bool = False,
                          min_flow: float = 0.4) -> np.ndarray:
    """Per-pixel soft orientation histogram (``BuildDescMat`` before integration).

    dx, dy: float32 [h, w]. Returns float32 [h, w, nbins + (1 if hof)]. Angles in [0, 360)
    degrees (OpenCV's fast atan2, like the original's ``fastAtan2``).
    """
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    ang = np.where(ang >= 360.0, ang - 360.0, ang)
    fbin = ang * np.float32(nbins / 360.0)
    bin0 = np.minimum(np.floor(fbin).astype(np.int64), nbins - 1)
    bin1 = (bin0 + 1) % nbins
    mag1 = (fbin - bin0) * mag
    mag0 = mag - mag1
    if hof:
        still = mag <= min_flow
        bin0 = np.where(still, nbins, bin0)
        mag0 = np.where(still, np.float32(1.0), mag0)
        mag1 = np.where(still, np.float32(0.0), mag1)
    nout = nbins + (1 if hof else 0)
    h, w = dx.shape
    hist = np.zeros((h * w, nout), np.float32)
    rows = np.arange(h * w)
    hist[rows, bin0.ravel()] = mag0.ravel()
    hist[rows, bin1.ravel()] += mag1.ravel()
    return hist.reshape(h, w, nout)


def _sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1))


def integral_histograms(grey: np.ndarray, flow: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """Combined integral histogram of one frame on one pyramid level.

    grey: uint8 [h, w] (the earlier frame of the pair: HOG is taken where the track is);
    flow: float32 [h, w, 2] (the warped flow: HOF, MBH). Returns float32 [h+1, w+1, 33];
    entry [y, x] sums rows < y and columns < x.
    """
    gx, gy = _sobel(grey)
    fx = np.ascontiguousarray(flow[..., 0])
    fy = np.ascontiguousarray(flow[..., 1])
    fxx, fxy = _sobel(fx)
    fyx, fyy = _sobel(fy)
    hist = np.concatenate([
        orientation_histogram(gx, gy, 8),
        orientation_histogram(fx, fy, 8, hof=True, min_flow=opts.min_flow),
        orientation_histogram(fxx, fxy, 8),
        orientation_histogram(fyx, fyy, 8),
    ], axis=2)
    return cv2.integral(hist, sdepth=cv2.CV_32F)


def frame_descriptors(integral: np.ndarray, points: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """Per-frame descriptors of many track points at once (``GetRect`` + ``GetDesc``).

    integral: float32 [h+1, w+1, 33]; points: float [N, 2] (x, y) on this level.
    Returns float32 [N, cells * 33] laid out as hog (cells x 8), hof (cells x 9),
    mbhx (cells x 8), mbhy (cells x 8); cells ordered x-major (x outer, y inner) like the
    original, each type L1-normalised then square-rooted.
    """
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    ps = opts.patch_size
    n = opts.nxy_cell
    stride = ps // n
    rx = np.clip(np.rint(points[:, 0]).astype(np.int64) - ps // 2, 0, w - ps)
    ry = np.clip(np.rint(points[:, 1]).astype(np.int64) - ps // 2, 0, h - ps)
    cells = []
    for cx in range(n):
        for cy in range(n):
            x0 = rx + cx * stride
            y0 = ry + cy * stride
            x1 = x0 + stride
            y1 = y0 + stride
            cells.append(integral[y1, x1] + integral[y0, x0] - integral[y1, x0] - integral[y0, x1])
    s = np.maximum(np.stack(cells, axis=1), 0) + np.float32(opts.epsilon)  # [N, cells, 33]
    out = []
    start = 0
    for nb in BINS.values():
        v = s[:, :, start:start + nb].reshape(len(points), -1)
        v = np.sqrt(v / v.sum(axis=1, keepdims=True))
        out.append(v)
        start += nb
    return np.concatenate(out, axis=1).astype(np.float32)


def pool_time(desc: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """Average per-frame descriptors over temporal cells (``PrintDesc``).

    desc: [M, L, cells * 33] -> [M, nt * cells * 33] reordered per type:
    hog (nt x cells x 8), hof (nt x cells x 9), mbhx, mbhy.
    """
    m, length, _ = desc.shape
    t_stride = length // opts.nt_cell
    used = desc[:, : t_stride * opts.nt_cell]
    pooled = used.reshape(m, opts.nt_cell, t_stride, -1).mean(axis=2)  # [M, nt, cells*33]
    out = []
    start = 0
    for nb in BINS.values():
        d = nb * opts.cells
        out.append(pooled[:, :, start:start + d].reshape(m, -1))
        start += d
    return np.concatenate(out, axis=1)
