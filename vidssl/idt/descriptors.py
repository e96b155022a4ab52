"""HOG / HOF / MBHx / MBHy from per-frame integral histograms, for all tracks at once.

As in the original ``Descriptors.h``: the gradient (HOG: [-1 0 1] Sobel of the grey frame;
MBH: Sobel of each warped-flow component) or the flow vector itself (HOF) votes with its
magnitude into the two nearest of 8 orientation bins (linear split); HOF has a 9th
"no motion" bin that gets 1 when the magnitude is <= min_flow (0.4). Each frame gives one
integral histogram (33 planes of ``[h + 1, w + 1]``) (8 + 9 + 8 + 8 channels); the descriptor of a
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


_ARANGE = {}


def _arange(n: int) -> np.ndarray:
    if n not in _ARANGE:
        _ARANGE[n] = np.arange(n, dtype=np.int32)
    return _ARANGE[n]


def orientation_histogram(dx: np.ndarray, dy: np.ndarray, nbins: int, hof: bool = False,
                          min_flow: float = 0.4) -> np.ndarray:
    """Per-pixel soft orientation histogram (``BuildDescMat`` before integration).

    dx, dy: float32 [h, w]. Returns float32 [nbins + (1 if hof), h, w] (planar: one
    contiguous plane per bin, which makes the integral images several times cheaper).
    Angles in [0, 360) degrees from OpenCV's fast atan2, like the original's ``fastAtan2``.
    """
    mag, ang = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    fbin = ang * np.float32(nbins / 360.0)
    bin0 = fbin.astype(np.int32)  # floor: fbin >= 0
    np.minimum(bin0, nbins - 1, out=bin0)  # angle 360 -> bin 0 handled by wrap below
    mag1 = (fbin - bin0) * mag
    mag0 = mag - mag1
    bin1 = bin0 + 1
    bin1[bin1 == nbins] = 0
    if hof:
        still = mag <= min_flow
        bin0[still] = nbins
        mag0[still] = 1.0
        mag1[still] = 0.0
    nout = nbins + (1 if hof else 0)
    h, w = dx.shape
    npix = h * w
    pix = _arange(npix)
    hist = np.zeros(nout * npix, np.float32)
    # bin0 != bin1 for every pixel, so two scattered writes build the histogram
    bin0 *= npix
    bin1 *= npix
    hist[bin0.ravel() + pix] = mag0.ravel()
    hist[bin1.ravel() + pix] = mag1.ravel()
    return hist.reshape(nout, h, w)


def _sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1))


def integral_histograms(grey: np.ndarray, flow: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """Combined integral histogram of one frame on one pyramid level.

    grey: uint8 [h, w] (the earlier frame of the pair: HOG is taken where the track is);
    flow: float32 [h, w, 2] (the warped flow: HOF, MBH). Returns float32
    [33, (h+1) * (w+1)] (planar, flattened): entry [c, y * (w+1) + x] sums channel c over
    rows < y and columns < x.
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
    ], axis=0)
    h, w = grey.shape
    out = np.empty((hist.shape[0], (h + 1) * (w + 1)), np.float32)
    for c in range(hist.shape[0]):
        out[c] = cv2.integral(hist[c], sdepth=cv2.CV_32F).ravel()
    return out


def frame_descriptors(integral: np.ndarray, points: np.ndarray, shape: tuple[int, int],
                      opts: IDTOptions) -> np.ndarray:
    """Per-frame descriptors of many track points at once (``GetRect`` + ``GetDesc``).

    integral: float32 [33, (h+1)*(w+1)] from :func:`integral_histograms`; points: float
    [N, 2] (x, y) on this level; shape: (h, w) of the level.
    Returns float32 [N, cells * 33] laid out as hog (cells x 8), hof (cells x 9),
    mbhx (cells x 8), mbhy (cells x 8); cells ordered x-major (x outer, y inner) like the
    original, each type L1-normalised then square-rooted.
    """
    h, w = shape
    ps = opts.patch_size
    n = opts.nxy_cell
    stride = ps // n
    npts = len(points)
    rx = np.clip(np.rint(points[:, 0]).astype(np.int64) - ps // 2, 0, w - ps)
    ry = np.clip(np.rint(points[:, 1]).astype(np.int64) - ps // 2, 0, h - ps)
    # the (n+1) x (n+1) cell corners of every patch, gathered once: [33, n+1, n+1, N]
    off = np.arange(n + 1) * stride
    idx = (ry[None, None, :] + off[:, None, None]) * (w + 1) + (rx[None, None, :] + off[None, :, None])
    c = np.take(integral, idx.ravel(), axis=1).reshape(-1, n + 1, n + 1, npts)  # [33, yc, xc, N]
    cell = c[:, 1:, 1:] + c[:, :-1, :-1] - c[:, 1:, :-1] - c[:, :-1, 1:]  # [33, ny, nx, N]
    cell = np.maximum(cell, 0) + np.float32(opts.epsilon)
    cell = cell.transpose(3, 2, 1, 0).reshape(npts, n * n, -1)  # [N, x-major cells, 33]
    out = []
    start = 0
    for nb in BINS.values():
        v = cell[:, :, start:start + nb].reshape(npts, -1)
        out.append(np.sqrt(v / v.sum(axis=1, keepdims=True)))
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
