"""RoIAlign (He et al., Mask R-CNN) in plain torch: the semantics of torchvision's / Detectron2's.

``roi_align(input [N, C, H, W], rois [R, 5], output_size, spatial_scale, sampling_ratio,
aligned) -> [R, C, PH, PW]`` computes what ``torchvision.ops.roi_align`` computes (Detectron2's
``ROIAlign`` layer calls it), without torchvision:

- a RoI is ``(batch index, x1, y1, x2, y2)`` in input coordinates, scaled by ``spatial_scale``;
  with ``aligned=True`` half a pixel is subtracted from every corner, so that a continuous
  coordinate ``u`` lands between pixel centres ``floor(u - 0.5)`` and the next (pixel ``i``
  covers ``[i, i + 1)``, its centre is ``i + 0.5``: Detectron2's ``aligned=True``, the detectors'
  default). ``aligned=False`` is the original Mask R-CNN rule: no shift, and RoIs smaller than
  one pixel widened to 1 x 1;
- the RoI is cut into ``PH x PW`` bins; in each bin a regular ``gh x gw`` grid of points, at
  the centres of the grid's cells, is sampled by bilinear interpolation and averaged.
  ``sampling_ratio > 0``: ``gh = gw = sampling_ratio``; ``<= 0`` (adaptive, Detectron2's
  default 0 in SlowFast's AVA head): ``gh = ceil(roi height / PH)``, ``gw = ceil(roi width / PW)``
  for each RoI;
- bilinear interpolation as torchvision's kernel: a point more than one pixel outside the map
  (``y < -1`` or ``y > H``, likewise x) gives 0 but still counts in the bin's average; a point
  in ``[-1, 0)`` is moved to 0 and one past the last pixel centre reads the last pixel.

Bilinear weights are a product of a weight in y and a weight in x, and the bin average sums
them over a grid, so the whole operation is ``out[r] = Ay[r] @ input[b_r] @ Ax[r]^T / count``
with per-RoI interpolation matrices ``Ay [PH, H]`` and ``Ax [PW, W]`` (two non-zeros per
sample point): exact, differentiable in ``input``, and two batched matrix products instead
of a loop over points. ``tests/test_roi_align.py`` checks it against a loop over
every sample point written from torchvision's CPU kernel.
"""
from __future__ import annotations

import torch

_CHUNK = 1 << 24  # elements of the gathered maps per batched product (64 MiB of float32)


def _axis_weights(start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, bins: int,
                  length: int) -> torch.Tensor:
    """Summed bilinear weights ``[R, bins, length]`` of each bin's ``grid`` sample points along one axis.

    start, bin_size: float [R]; grid: int64 [R] (points per bin, 0 allowed).
    """
    g_max = max(int(grid.max()) if grid.numel() else 1, 1)
    i = torch.arange(g_max, dtype=start.dtype, device=start.device)
    b = torch.arange(bins, dtype=start.dtype, device=start.device)
    step = bin_size / grid.clamp(min=1).to(start.dtype)  # [R]
    pos = (start[:, None, None] + b[None, :, None] * bin_size[:, None, None]
           + (i[None, None, :] + 0.5) * step[:, None, None])  # [R, bins, G]
    used = (i[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= length)
    pos = pos.clamp(min=0.0)
    low = pos.floor().long()
    last = low >= length - 1
    low = torch.where(last, torch.full_like(low, length - 1), low)
    high = torch.where(last, low, low + 1)
    frac = torch.where(last, torch.zeros_like(pos), pos - low.to(pos.dtype))
    w_low = (1.0 - frac) * used
    w_high = frac * used
    out = torch.zeros(pos.shape[0], bins, length, dtype=start.dtype, device=start.device)
    out.scatter_add_(2, low, w_low)
    out.scatter_add_(2, high, w_high)
    return out


def roi_align(input: torch.Tensor, rois: torch.Tensor, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = True) -> torch.Tensor:
    """RoIAlign of ``input [N, C, H, W]`` over ``rois [R, 5]`` (batch index, x1, y1, x2, y2) ->
    ``[R, C, PH, PW]`` (see the module docstring; ``output_size`` an int or (PH, PW))."""
    if input.dim() != 4:
        raise ValueError(f"roi_align: input must be [N, C, H, W], got {tuple(input.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"roi_align: rois must be [R, 5] (batch index, x1, y1, x2, y2), got {tuple(rois.shape)}")
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    n, c, h, w = input.shape
    r = rois.to(input.dtype if input.is_floating_point() else torch.float32).detach()
    if r.shape[0] == 0:
        return input.new_zeros(0, c, ph, pw)
    index = r[:, 0].long()
    if index.min() < 0 or index.max() >= n:
        raise ValueError(f"roi_align: batch indices must be in [0, {n - 1}], got {index.min()}..{index.max()}")
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (r[:, k] * spatial_scale - offset for k in range(1, 5))
    rw, rh = x2 - x1, y2 - y1
    if not aligned:  # the original rule: at least 1 x 1
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    if sampling_ratio > 0:
        gh = gw = torch.full_like(index, int(sampling_ratio))
    else:
        gh = torch.ceil(rh / ph).clamp(min=0).long()
        gw = torch.ceil(rw / pw).clamp(min=0).long()
    ay = _axis_weights(y1, rh / ph, gh, ph, h)  # [R, PH, H]
    ax = _axis_weights(x1, rw / pw, gw, pw, w)  # [R, PW, W]
    count = (gh * gw).clamp(min=1).to(ay.dtype)
    ay = ay / count[:, None, None]
    ay, axt = ay.to(input.dtype), ax.to(input.dtype).transpose(1, 2)  # [R, PH, H], [R, W, PW]
    step = max(1, _CHUNK // max(1, c * h * w))  # RoIs per batched product: their maps gathered, bounded memory
    out = []
    for i in range(0, r.shape[0], step):
        feat = input[index[i:i + step]].permute(0, 2, 1, 3).reshape(-1, h, c * w)  # [r, H, C W]
        rows = torch.bmm(ay[i:i + step], feat).reshape(-1, ph * c, w)  # [r, PH C, W]
        out.append(torch.bmm(rows, axt[i:i + step]).reshape(-1, ph, c, pw).permute(0, 2, 1, 3))  # [r, C, PH, PW]
    return torch.cat(out)
