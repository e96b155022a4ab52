"""HOG / HOF / MBHx / MBHy from per-frame integral histograms, for all tracks at once.

As in the original ``Descriptors.h``: the gradient (HOG: [-1 0 1] Sobel of the grey frame;
MBH: Sobel of each warped-flow component) or the flow vector itself (HOF) votes with its
magnitude into the two nearest of 8 orientation bins (linear split); HOF has a 9th
"no motion" bin that gets 1 when the magnitude is <= min_flow (0.4). Each frame gives one
integral histogram (33 channels: 8 + 9 + 8 + 8, each ``[h + 1, w + 1]``); the descriptor of a
track point is read from the 32x32 patch around it (clamped to the image), split into
2x2 cells: max(sum, 0) + epsilon per bin, L1-normalised over the 2x2xbins vector of one
type, then square-rooted (RootSIFT-like). :func:`pool_time` averages the per-frame
vectors over nt_cell = 3 temporal cells of 5 frames (``PrintDesc``).
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

from vidssl.idt.options import IDTOptions

#: channels of the combined integral histogram, in order
BINS = {"hog": 8, "hof": 9, "mbhx": 8, "mbhy": 8}


_PIXELS: dict = {}


def _pixels(npix: int) -> np.ndarray:
    """intp [npix] 0..npix-1 (cached: one array per pyramid level size)."""
    if npix not in _PIXELS:
        if len(_PIXELS) > 32:
            _PIXELS.clear()
        _PIXELS[npix] = np.arange(npix, dtype=np.intp)
    return _PIXELS[npix]


_SCRATCH = threading.local()


def _scratch(size: int) -> np.ndarray:
    """A zeroed float32 buffer of ``size`` reused between calls of this thread."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or len(buf) < size:
        buf = _SCRATCH.buf = np.zeros(size, np.float32)
        return buf
    buf = buf[:size]
    buf.fill(0)
    return buf


def _soft_histogram(dx: np.ndarray, dy: np.ndarray, nbins: int, hof: bool, min_flow: float,
                    scratch: bool = False) -> np.ndarray:
    """float32 [nbins (+1 with hof), h, w] (see :func:`orientation_histogram`); with
    ``scratch`` in this thread's reused buffer, valid until the next call. The step is
    memory-bound: float32 values, intp indices for the two scattered writes."""
    h, w = dx.shape
    npix = h * w
    mag, fbin = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    mag, fbin = mag.ravel(), fbin.ravel()
    fbin *= np.float32(nbins / 360.0)
    low = np.floor(fbin)
    np.minimum(low, np.float32(nbins - 1), out=low)  # angle 360: all the weight goes to bin 0
    mag1 = fbin  # fractional part (exact in float32) times magnitude: the upper bin's share
    mag1 -= low
    mag1 *= mag
    mag0 = mag - mag1
    size = (nbins + (1 if hof else 0)) * npix
    hist = _scratch(size) if scratch else np.zeros(size, np.float32)
    if hof:
        moving = mag > np.float32(min_flow)
        hist[nbins * npix:] = ~moving  # the no-motion bin gets 1, the orientation bins nothing
        mag0 *= moving
        mag1 *= moving
    # flat indices of the lower bin and of the next one (wrapping to bin 0)
    bin0 = low.astype(np.intp)
    pix = _pixels(npix)
    idx0 = np.take(np.arange(nbins, dtype=np.intp) * npix, bin0)
    idx0 += pix
    idx1 = np.take((np.arange(1, nbins + 1, dtype=np.intp) % nbins) * npix, bin0)
    idx1 += pix
    # the two bins differ for every pixel, so two scattered writes build the histogram
    hist[idx0] = mag0
    hist[idx1] = mag1
    return hist.reshape(-1, h, w)


def orientation_histogram(dx: np.ndarray, dy: np.ndarray, nbins: int, hof: bool = False,
                          min_flow: float = 0.4) -> np.ndarray:
    """Per-pixel soft orientation histogram (``BuildDescMat`` before integration).

    dx, dy: float32 [h, w]. Returns float32 [nbins + (1 if hof), h, w] (planar: one
    contiguous plane per bin, which makes the integral images several times cheaper).
    Angles in [0, 360) degrees from OpenCV's fast atan2, like the original's ``fastAtan2``.
    """
    dx = np.ascontiguousarray(dx, np.float32)
    dy = np.ascontiguousarray(dy, np.float32)
    return _soft_histogram(dx, dy, nbins, hof, min_flow)


def _sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[-1 0 1] derivatives in x and y (``cv::Sobel`` with ksize 1), float32."""
    return cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1)


def integral_histograms(grey: np.ndarray, flow: np.ndarray, opts: IDTOptions) -> np.ndarray:
    """Combined integral histogram of one frame on one pyramid level.

    grey: uint8 [h, w] (the earlier frame of the pair: HOG is taken where the track is);
    flow: float32 [h, w, 2] (the warped flow: HOF, MBH). Returns float32
    [33, (h+1) * (w+1)] (planar, flattened): entry [c, y * (w+1) + x] sums channel c over
    rows < y and columns < x.
    """
    h, w = grey.shape
    fx = np.ascontiguousarray(flow[..., 0])
    fy = np.ascontiguousarray(flow[..., 1])
    fields = [(*_sobel(grey), False), (fx, fy, True), (*_sobel(fx), False), (*_sobel(fy), False)]
    out = np.empty((sum(BINS.values()), h + 1, w + 1), np.float32)
    start = 0
    # one field at a time: its histogram is still in cache when it is integrated
    for dx, dy, hof in fields:
        hist = _soft_histogram(dx, dy, 8, hof, opts.min_flow, scratch=True)
        for c in range(len(hist)):
            cv2.integral(hist[c], sum=out[start + c], sdepth=cv2.CV_32F)
        start += len(hist)
    return out.reshape(len(out), -1)


_LAYOUT: dict = {}


def _layout(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Constants of :func:`frame_descriptors` for n x n cells: corners [(n+1)^2, n^2]
    (+1/-1: the cell sums from the patch corners' integral values, both x-major) and the
    output columns as indices into a point's [cells, 33] values (cell-major)."""
    if n not in _LAYOUT:
        corners = np.zeros((n + 1, n + 1, n, n), np.float32)  # x corner, y corner, x cell, y cell
        for i in range(n):
            for j in range(n):
                corners[i + 1, j + 1, i, j] += 1
                corners[i, j, i, j] += 1
                corners[i + 1, j, i, j] -= 1
                corners[i, j + 1, i, j] -= 1
        nch = sum(BINS.values())
        starts = np.cumsum([0] + list(BINS.values())[:-1])
        columns = [i * nch + s + b for s, nb in zip(starts, BINS.values()) for i in range(n * n) for b in range(nb)]
        _LAYOUT[n] = (corners.reshape((n + 1) ** 2, n * n), np.asarray(columns, np.intp))
    return _LAYOUT[n]


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
    nch = integral.shape[0]
    corners, columns = _layout(n)
    if npts == 0:
        return np.zeros((0, len(columns)), np.float32)
    rx = np.clip(np.rint(points[:, 0]).astype(np.intp) - ps // 2, 0, w - ps)
    ry = np.clip(np.rint(points[:, 1]).astype(np.intp) - ps // 2, 0, h - ps)
    # patches in raster order of their corner: the gather then sweeps each plane forwards
    order = np.argsort(ry * (w + 1) + rx, kind="stable")
    rx, ry = rx[order], ry[order]
    # the (n+1) x (n+1) corners of every patch (x-major): [33, N, corners]
    off = np.arange(n + 1) * stride
    idx = (rx[:, None, None] + off[None, :, None]) + (ry[:, None, None] + off[None, None, :]) * (w + 1)
    c = np.take(integral, idx.ravel(), axis=1)
    # cell sums x2y2 + x1y1 - x2y1 - x1y2 as one small product: [33, N * cells]
    v = (c.reshape(-1, (n + 1) ** 2) @ corners).reshape(nch, -1)
    np.maximum(v, 0, out=v)
    v += np.float32(opts.epsilon)
    # L1 norm of each type over its cells x bins, then square root
    start = 0
    for nb in BINS.values():
        part = v[start:start + nb]
        total = part.sum(axis=0).reshape(npts, n * n).sum(axis=1)  # [N]
        part /= np.repeat(total, n * n)
        start += nb
    np.sqrt(v, out=v)
    v = cv2.transpose(v).reshape(npts, -1)  # [N, cells x 33]
    back = np.empty_like(order)
    back[order] = np.arange(npts)
    return np.take(v, back, axis=0)[:, columns]


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
