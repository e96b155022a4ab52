"""RoIAlign against a slow reference: a loop over every sample point of every bin, with the
bilinear interpolation written out as torchvision's CPU kernel (roi_align_kernel.cpp) does it,
on random maps and boxes, boxes at the borders, partly or wholly outside, and sub-pixel ones."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidssl.models.roi_align import roi_align


def bilinear(fmap: np.ndarray, y: float, x: float) -> np.ndarray:
    """fmap [C, H, W] at (y, x), torchvision's rule: 0 beyond one pixel outside; clamped inside."""
    _, h, w = fmap.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(fmap.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_high = y_low = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_high = x_low = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * fmap[:, y_low, x_low] + hy * lx * fmap[:, y_low, x_high]
            + ly * hx * fmap[:, y_high, x_low] + ly * lx * fmap[:, y_high, x_high])


def reference(fmap: np.ndarray, rois: np.ndarray, ph: int, pw: int, scale: float, ratio: int,
              aligned: bool) -> np.ndarray:
    out = np.zeros((len(rois), fmap.shape[1], ph, pw))
    off = 0.5 if aligned else 0.0
    for r, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy, ex, ey = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = ex - sx, ey - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        count = max(gh * gw, 1)
        for i in range(ph):
            for j in range(pw):
                acc = np.zeros(fmap.shape[1])
                for iy in range(gh):
                    y = sy + i * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        x = sx + j * bw + (ix + 0.5) * bw / gw
                        acc += bilinear(fmap[int(b)], y, x)
                out[r, :, i, j] = acc / count
    return out


def random_rois(rng, n: int, h: int, w: int, scale: float, count: int) -> np.ndarray:
    """Boxes in input coordinates (map / scale): inside, on the borders, partly and wholly
    outside, sub-pixel, and degenerate (zero size)."""
    H, W = h / scale, w / scale
    rows = []
    for k in range(count):
        kind = k % 6
        if kind == 0:  # anywhere inside
            x1, x2 = np.sort(rng.uniform(0, W, 2))
            y1, y2 = np.sort(rng.uniform(0, H, 2))
        elif kind == 1:  # touching the borders
            x1, y1, x2, y2 = 0.0, rng.uniform(0, H / 2), W, H
        elif kind == 2:  # partly outside
            x1, y1 = rng.uniform(-W / 2, 0), rng.uniform(-H / 2, H / 2)
            x2, y2 = rng.uniform(W / 2, 1.5 * W), rng.uniform(H / 2, 1.5 * H)
        elif kind == 3:  # sub-pixel (of the map)
            x1, y1 = rng.uniform(0, W - 1 / scale), rng.uniform(0, H - 1 / scale)
            x2, y2 = x1 + rng.uniform(0.05, 0.9) / scale, y1 + rng.uniform(0.05, 0.9) / scale
        elif kind == 4:  # wholly outside
            x1, y1 = W + rng.uniform(1, 3) / scale, rng.uniform(-3, -1.5) / scale
            x2, y2 = x1 + 2 / scale, y1 + 1 / scale
        else:  # a point (zero width and height)
            x1 = x2 = rng.uniform(0, W)
            y1 = y2 = rng.uniform(0, H)
        rows.append([rng.integers(n), x1, y1, x2, y2])
    return np.array(rows, np.float64)


@pytest.mark.parametrize("n,c,h,w,out,scale", [(1, 3, 5, 7, 2, 1.0), (2, 4, 8, 8, 3, 0.25),
                                               (3, 2, 4, 9, (2, 4), 0.5), (2, 5, 1, 6, 2, 1.0)])
@pytest.mark.parametrize("ratio", [0, 1, 2, 3])
@pytest.mark.parametrize("aligned", [True, False])
def test_matches_the_point_by_point_reference(n, c, h, w, out, scale, ratio, aligned):
    rng = np.random.default_rng([n, c, h, w, ratio, int(aligned)])
    fmap = rng.standard_normal((n, c, h, w))
    rois = random_rois(rng, n, h, w, scale, 24)
    ph, pw = (out, out) if isinstance(out, int) else out
    want = reference(fmap, rois, ph, pw, scale, ratio, aligned)
    got = roi_align(torch.from_numpy(fmap), torch.from_numpy(rois), out, scale, ratio, aligned)
    assert got.shape == (len(rois), c, ph, pw)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-10)
    # float32 input: the same up to float rounding
    got32 = roi_align(torch.from_numpy(fmap).float(), torch.from_numpy(rois).float(), out, scale, ratio, aligned)
    np.testing.assert_allclose(got32.numpy(), want, rtol=0, atol=1e-4)


def test_reference_is_not_trivially_satisfied():
    """Hand-checked values: a constant map averages to the constant; a linear ramp is sampled
    at the bin centres; aligned shifts by half a pixel; outside points count as zeros."""
    ramp = torch.arange(6, dtype=torch.float64).repeat(4, 1)[None, None]  # value = x, [1, 1, 4, 6]
    box = torch.tensor([[0, 1.0, 0.0, 5.0, 4.0]], dtype=torch.float64)
    # aligned: x range [0.5, 4.5]; 2 bins of width 2, one sample each at x = 1.5, 3.5
    got = roi_align(ramp, box, (1, 2), 1.0, 1, True)
    assert got.flatten().tolist() == pytest.approx([1.5, 3.5])
    got = roi_align(ramp, box, (1, 2), 1.0, 1, False)  # x range [1, 5]: samples at 2, 4
    assert got.flatten().tolist() == pytest.approx([2.0, 4.0])
    outside = torch.tensor([[0, -3.0, 0.0, -1.5, 4.0]], dtype=torch.float64)  # x in [-3.5, -2]: beyond -1
    assert roi_align(ramp + 1, outside, 1, 1.0, 2, True).abs().max() == 0
    half = torch.tensor([[0, -2.5, 0.0, 0.5, 4.0]], dtype=torch.float64)  # aligned: x in [-3, 0], y in [-0.5, 3.5]
    # 4 x 4 samples; x = -2.625, -1.875, -1.125 lie beyond -1 (zeros that count), x = -0.375 reads x = 0 (value 1)
    assert roi_align(ramp + 1, half, 1, 1.0, 4, True).item() == pytest.approx(4 / 16)
    # samples exactly at x = W and x = -1 are still inside (they read the last / first column)
    edge = torch.tensor([[0, 5.0, 0.0, 7.0, 4.0], [0, -2.0, 0.0, 0.0, 4.0]], dtype=torch.float64)
    assert roi_align(ramp + 1, edge, 1, 1.0, 1, False).flatten().tolist() == pytest.approx([6.0, 1.0])


def test_gradient_reaches_the_map_and_rois_are_per_image():
    fmap = torch.randn(2, 3, 6, 6, requires_grad=True)
    rois = torch.tensor([[1, 0.0, 0.0, 3.0, 3.0], [0, 2.0, 2.0, 6.0, 6.0]])
    out = roi_align(fmap, rois, 2, 1.0, 2, True)
    out.sum().backward()
    assert fmap.grad[1, :, :3, :3].abs().sum() > 0 and fmap.grad[1, :, 4:, 4:].abs().sum() == 0
    assert fmap.grad[0, :, :2, :2].abs().sum() == 0
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(fmap.detach(), torch.tensor([[2, 0.0, 0.0, 1.0, 1.0]]), 2)
    assert roi_align(fmap.detach(), torch.zeros(0, 5), 3).shape == (0, 3, 3, 3)
