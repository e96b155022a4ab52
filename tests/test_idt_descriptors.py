"""IDT descriptor pieces against slow per-pixel / per-track references."""
import math

import cv2
import numpy as np
import pytest

from vidssl.errors import IDTOptionError
from vidssl.idt.descriptors import frame_descriptors, integral_histograms, orientation_histogram, pool_time
from vidssl.idt.flow import pyramid_scales
from vidssl.idt.options import IDTOptions
from vidssl.idt.trajectories import dense_sample, finish_tracks


def slow_hist(dx, dy, nbins, hof=False, min_flow=0.4):
    h, w = dx.shape
    out = np.zeros((nbins + hof, h, w))
    for y in range(h):
        for x in range(w):
            m = math.hypot(dx[y, x], dy[y, x])
            if hof and m <= min_flow:
                out[nbins, y, x] = 1.0
                continue
            a = math.degrees(math.atan2(dy[y, x], dx[y, x])) % 360.0
            f = a * nbins / 360.0
            b0 = int(math.floor(f)) % nbins
            frac = f - math.floor(f)
            out[b0, y, x] += (1 - frac) * m
            out[(b0 + 1) % nbins, y, x] += frac * m
    return out


@pytest.mark.parametrize("shape,nbins,hof", [((7, 9), 8, False), ((5, 6), 8, True), ((4, 11), 6, False)])
def test_orientation_histogram(shape, nbins, hof):
    rng = np.random.default_rng(sum(shape))
    dx = rng.normal(size=shape).astype(np.float32)
    dy = rng.normal(size=shape).astype(np.float32)
    ours = orientation_histogram(dx, dy, nbins, hof=hof)
    ref = slow_hist(dx, dy, nbins, hof)
    # OpenCV's fast atan2 is accurate to ~0.3 degree
    np.testing.assert_allclose(ours, ref, atol=0.03 * np.abs(ref).max())
    np.testing.assert_allclose(ours.sum(0), ref.sum(0), rtol=1e-5, atol=1e-5)


def slow_descriptor(hist, px, py, opts):
    """Sum the raw per-pixel histogram over each cell of the clamped 32x32 patch."""
    c, h, w = hist.shape
    ps, n = opts.patch_size, opts.nxy_cell
    st = ps // n
    rx = min(max(int(np.rint(px)) - ps // 2, 0), w - ps)
    ry = min(max(int(np.rint(py)) - ps // 2, 0), h - ps)
    out = []
    start = 0
    for nb in (8, 9, 8, 8):
        v = []
        for cx in range(n):
            for cy in range(n):
                cell = hist[start:start + nb, ry + cy * st:ry + (cy + 1) * st, rx + cx * st:rx + (cx + 1) * st]
                v.extend(max(s, 0) + opts.epsilon for s in cell.sum((1, 2)))
        v = np.asarray(v)
        out.append(np.sqrt(v / v.sum()))
        start += nb
    return np.concatenate(out)


@pytest.mark.parametrize("h,w", [(40, 36), (33, 50)])
def test_frame_descriptors_vs_loop(h, w):
    opts = IDTOptions()
    rng = np.random.default_rng(h * w)
    grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
    flow = rng.normal(scale=1.5, size=(h, w, 2)).astype(np.float32)
    integral = integral_histograms(grey, flow, opts)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    fx, fy = flow[..., 0].copy(), flow[..., 1].copy()
    hist = np.concatenate([
        orientation_histogram(gx, gy, 8), orientation_histogram(fx, fy, 8, hof=True),
        orientation_histogram(cv2.Sobel(fx, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(fx, cv2.CV_32F, 0, 1, ksize=1), 8),
        orientation_histogram(cv2.Sobel(fy, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(fy, cv2.CV_32F, 0, 1, ksize=1), 8),
    ]).astype(np.float64)
    pts = np.stack([rng.uniform(0, w, 25), rng.uniform(0, h, 25)], 1).astype(np.float32)
    pts[0] = (0.2, 0.3)  # clamped at the corners
    pts[1] = (w - 0.5, h - 0.5)
    ours = frame_descriptors(integral, pts, (h, w), opts)
    ref = np.stack([slow_descriptor(hist, x, y, opts) for x, y in pts])
    assert ours.shape == (25, 4 * 33)
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=2e-4)


def test_pool_time_layout():
    opts = IDTOptions()
    rng = np.random.default_rng(0)
    desc = rng.random((3, 15, 132)).astype(np.float32)
    out = pool_time(desc, opts)
    assert out.shape == (3, 96 + 108 + 96 + 96)
    # hof block, temporal cell 1 = mean of frames 5..9, per-frame hof columns 32..68
    np.testing.assert_allclose(out[:, 96 + 36:96 + 72], desc[:, 5:10, 32:68].mean(1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 96 * 2 + 108 + 64:], desc[:, 10:15, 100:132].mean(1), rtol=1e-6)


def test_pyramid_scales_kth():
    scales, sizes = pyramid_scales(160, 120, IDTOptions())
    np.testing.assert_allclose(scales, [1, math.sqrt(2), 2, 2 * math.sqrt(2)], rtol=1e-6)
    assert sizes == [(160, 120), (113, 85), (80, 60), (57, 42)]
    assert len(pyramid_scales(1920, 1080, IDTOptions())[0]) == 8


def test_dense_sample_vs_loop():
    opts = IDTOptions()
    rng = np.random.default_rng(1)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (31, 43), dtype=np.uint8), (3, 3), 1)
    existing = np.asarray([[7.5, 3.2], [22.0, 17.9], [42.5, 30.5]], np.float32)
    ours = dense_sample(grey, existing, opts)
    eig = cv2.cornerMinEigenVal(grey, 3, ksize=3)
    thr = eig.max() * opts.quality
    taken = {(int(x) // 5, int(y) // 5) for x, y in existing if int(x) < 40 and int(y) < 30}
    ref = [(j * 5 + 2, i * 5 + 2) for i in range(31 // 5) for j in range(43 // 5)
           if (j, i) not in taken and eig[i * 5 + 2, j * 5 + 2] > thr]
    assert [tuple(p) for p in ours.astype(int)] == ref


def test_pruning_rules():
    opts = IDTOptions()
    L = opts.track_length
    t = np.arange(L + 1, dtype=np.float32)
    moving = np.stack([10 + 2 * t, 10 + t], 1)  # 2 px/frame: kept
    static = np.stack([10 + 0.1 * t, 10 + 0 * t], 1)  # std < sqrt(3): dropped
    erratic = np.stack([10 + 12 * t, 10 + 0 * t], 1)  # std > 50: dropped
    jump = np.stack([10 + 0.5 * t, 10 + 0 * t], 1)
    jump[8:] += (40, 0)  # one 40 px step, > 20 px and > 0.7 of the length: dropped
    pts = np.stack([moving, static, erratic, jump])
    disp = np.diff(pts, axis=1)
    desc = np.ones((4, L, 132), np.float32)
    rows = finish_tracks(pts, disp, desc, 20, 1.0, 400, 300, opts)
    assert len(rows) == 1 and rows[0, 0] == 20
    np.testing.assert_allclose(rows[0, 1:3], moving.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rows[0, 5], 15 * math.sqrt(5), rtol=1e-5)
    # camera: a track whose warped displacement never exceeds 1 px is dropped
    rows = finish_tracks(pts[:1], disp[:1] * 0.4, desc[:1], 20, 1.0, 400, 300, opts)
    assert len(rows) == 0
    rows = finish_tracks(pts[:1], disp[:1] * 0.4, desc[:1], 20, 1.0, 400, 300, IDTOptions(camera=False))
    assert len(rows) == 1


def test_bad_options():
    with pytest.raises(IDTOptionError, match="flow"):
        IDTOptions(flow="lk")
    with pytest.raises(IDTOptionError, match="max_short_side"):
        IDTOptions(max_short_side=8)
