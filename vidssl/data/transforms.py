"""Clip augmentation and input modality: uint8 frames -> normalised float clips.

:class:`ClipTransform` turns the pathways of one clip (uint8 ``[T, H, W, 3]`` arrays
from :func:`vidssl.data.video.read_frames`) into float tensors ``[C, T', S, S]``.

Training (``train=True``): ONE random draw per call (:meth:`ClipTransform.draw`),
shared by every frame and every pathway of the clip; a new call is a new draw
(large-scale study App. B.1: "To each clip, we apply ..."). In order:

1. Crop (``augment.crop``), taken in input pixels and resized once to ``S x S``
   (``S = crop_size``) with bilinear interpolation (antialiased when shrinking) on
   uint8 frames, as PIL-based pipelines do (torch's fast uint8 kernel); cropping
   first and resizing only the crop is the same geometry as resizing the frame and
   cropping it (up to rounding the crop to whole input pixels), at a fraction of
   the cost.

   - ``"scale_jitter"`` (VGG-style, the default; App. B.1, Table 8 "default"): the
     short side is resized to ``r`` uniform in ``augment.short_side`` (integers,
     raised to ``S`` when smaller, i.e. the frame is resized up) and a random
     ``S x S`` crop is taken; in input pixels a square of side
     ``round(S * short / r)`` at a uniform position.
   - ``"resized"`` (Inception-style; Table 8): torchvision ``RandomResizedCrop``:
     area fraction uniform in ``augment.area``, aspect ratio log-uniform in
     ``augment.aspect``, 10 tries, then a centre crop of the whole frame clamped
     to the aspect range; the crop is resized to ``S x S``.
   - ``"center"`` (weak augmentation): the short side to ``S``, centre crop.
2. Horizontal flip with p = 0.5 (``augment.flip``).
3. Colour jitter with p = ``color_p`` (MoCo v2 / SimCLR; App. B.1): brightness,
   contrast, saturation, hue = 0.4s, 0.4s, 0.4s, 0.1s for strength
   ``s = color_strength``; factors uniform in ``[max(0, 1 - x), 1 + x]`` (hue in
   ``[-h, h]``), applied in a random order, the math of torchvision's functional
   ops on float images: brightness multiplies; contrast blends with the mean of the
   frame's grayscale image (a mean per frame, as torchvision does on a video
   tensor); saturation blends with the grayscale image; hue shifts H in HSV space;
   every step clamps to [0, 1].
4. Grayscale with p = ``grayscale_p`` (ITU-R 601-2 luma 0.299, 0.587, 0.114,
   repeated to 3 channels).
5. Gaussian blur with p = ``blur_p``, sigma uniform in ``blur_sigma`` (separable
   kernel of radius ``ceil(3 sigma)``, at most the frame size - 1, reflect padding).
6. Colour dropping with p = ``color_drop_p`` (CPC paper Sec. 4.2.2, "to reduce the
   similarity between two consecutive segments"; the operation of Doersch et al.
   2015): one channel is kept, the two others are replaced by that channel's mean
   over the clip plus Gaussian noise of 1/100 of its standard deviation (seeded by
   the draw). RGB modality only.
7. Temporal difference with p = ``temporal_diff_p`` (Table 7; RGB modality only):
   the frames are made grayscale and differenced across time. The sampler gives
   only T frames for RGB, so T - 1 differences are computed and the last one is
   repeated to keep T frames (a 1-frame clip gives zeros). Scaled like ``diff``.

Test (``train=False``, App. B.2): the short side is resized to
``test_short_side`` and ``test_crops`` crops of ``S x S`` are taken: 1 = centre,
3 = start / centre / end along the long side (left/centre/right for landscape
frames, top/centre/bottom for portrait; horizontal for square frames), centred on
the short side. A crop larger than the resized frame is clamped to the frame (the
frame is resized up). No random step runs. The result is a list over crops of a
list over pathways.

Modality (``cfg.modality``) and normalisation:

- ``"rgb"`` (C = 3): ``(x - mean) / std`` per channel (``augment.mean/std``).
- ``"diff"`` (C = 3): frame differences of the grayscale clip (CPC paper Sec. 4.2:
  "images are transformed into grayscale and the difference is made between two
  consecutive frames"); ``T + 1`` frames give ``T``. Each difference is divided by
  ``std`` per channel, i.e. it is the difference of two normalised grayscale frames
  (the mean cancels), repeated to 3 channels so RGB architectures fit.
- ``"flow"`` (C = 2: dx, dy in pixels of the output clip): OpenCV DIS optical flow
  (``DISOPTICAL_FLOW_PRESET_FAST``; the CPC paper's fast variant) between
  consecutive frames of the cropped, resized and flipped clip (``T + 1`` frames
  give ``T`` fields), clipped to +-10 px and divided by 10 (CPC Sec. 4.2 thresholds
  flow to [-10, 10]), then the spatial mean of each field is subtracted (CPC Sec.
  4.2, following the two-stream network). Colour, grayscale and blur draws are not
  applied: flow fields are not colours. Stored flow (``data.flow_root``,
  :mod:`vidssl.data.flow_store`) comes in as float32 ``[T, H, W, 2]`` fields instead
  of frames (T fields give T): they get the same crop, resize and flip, the vectors
  follow the geometry (dx x S / w, dy x S / h; a flip negates dx), then the same
  bound and mean subtraction.

All shapes are ``[C, T', S, S]`` float32 per pathway.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidssl.config import DataConfig
from vidssl.errors import TransformError

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma
FLOW_BOUND = 10.0  # pixels; CPC Sec. 4.2 thresholds flow to [-10, 10]
CROPS = ("scale_jitter", "resized", "center")
MODALITIES = ("rgb", "diff", "flow")
_RRC_TRIES = 10  # torchvision RandomResizedCrop


# ----------------------------------------------------------------------------- draws


@dataclass(frozen=True)
class ColorDraw:
    """Colour-jitter factors and the order of the four ops (0 brightness, 1 contrast,
    2 saturation, 3 hue), as torchvision ``ColorJitter.get_params``."""

    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float


@dataclass(frozen=True)
class ClipDraw:
    """Everything random about one clip. ``box`` = (top, left, height, width) of the
    crop in input pixels; ``None`` fields mean "not applied"."""

    box: tuple[int, int, int, int]
    flip: bool = False
    color: Optional[ColorDraw] = None
    grayscale: bool = False
    blur_sigma: Optional[float] = None
    temporal_diff: bool = False
    color_keep: Optional[int] = None  # colour dropping: the channel kept
    noise_seed: int = 0  # colour dropping: seed of the noise in the dropped channels


# ----------------------------------------------------------------------------- pixel ops
# All take float images in [0, 1] shaped [..., 3, H, W] (the ..., e.g. frames, share the op).


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[T, 3, H, W]`` in [0, 1] (channels-last memory)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def rgb_to_grayscale(x: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` -> ``[..., 1, H, W]`` luma (0.299 R + 0.587 G + 0.114 B)."""
    r, g, b = x.unbind(-3)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(-3)


def _blend(x: torch.Tensor, other, factor: float) -> torch.Tensor:
    return (factor * x + (1.0 - factor) * other).clamp_(0.0, 1.0)


def adjust_brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    return (x * factor).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean of each image's grayscale version (per frame)."""
    mean = rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, factor)


def adjust_saturation(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(x, rgb_to_grayscale(x), factor)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """``[..., 3, H, W]`` RGB in [0, 1] -> HSV, each in [0, 1] (torchvision's formula)."""
    r, g, b = x.unbind(-3)
    maxc = x.amax(-3)
    minc = x.amin(-3)
    cr = maxc - minc
    s = cr / maxc.clamp_min(1e-12)  # 0 where maxc == 0 (then cr == 0 too)
    h6 = _hue_sextant(r, g, b, maxc, cr)
    return torch.stack((h6 / 6.0, s, maxc), dim=-3)


def _hue_sextant(r, g, b, maxc, cr) -> torch.Tensor:
    """6 x hue in [0, 6): (g - b) / C where R is the max, 2 + (b - r) / C where G is,
    4 + (r - g) / C otherwise (0 for grey pixels, C = max - min = 0)."""
    inv = 1.0 / cr.clamp_min(1e-12)
    h6 = torch.where(maxc == r, (g - b) * inv, torch.where(maxc == g, (b - r) * inv + 2.0, (r - g) * inv + 4.0))
    return torch.remainder(h6, 6.0)


_CHANNEL_PHASE = torch.tensor([5.0, 3.0, 1.0]).view(3, 1, 1)  # R, G, B in hsv_to_rgb's k


def _from_sextant(h6: torch.Tensor, maxc: torch.Tensor, cr: torch.Tensor) -> torch.Tensor:
    """RGB channel n is ``V - C clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6 H) mod 6``
    (V = max, C = V S = max - min); the standard HSV -> RGB map."""
    k = torch.remainder(h6.unsqueeze(-3) + _CHANNEL_PHASE, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return (maxc.unsqueeze(-3) - cr.unsqueeze(-3) * ramp).clamp_(0.0, 1.0)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv` (``[..., 3, H, W]``)."""
    h, s, v = x.unbind(-3)
    return _from_sextant(6.0 * h, v, v * s)


def adjust_hue(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Shift the hue by ``factor`` (in [-0.5, 0.5] turns) in HSV space, i.e.
    ``hsv_to_rgb((h + factor) mod 1, s, v)`` fused into one pass."""
    if factor == 0:
        return x
    r, g, b = x.unbind(-3)
    maxc = x.amax(-3)
    cr = maxc - x.amin(-3)
    return _from_sextant(_hue_sextant(r, g, b, maxc, cr) + 6.0 * factor, maxc, cr)


def color_jitter(x: torch.Tensor, draw: ColorDraw) -> torch.Tensor:
    ops = (
        lambda y: adjust_brightness(y, draw.brightness),
        lambda y: adjust_contrast(y, draw.contrast),
        lambda y: adjust_saturation(y, draw.saturation),
        lambda y: adjust_hue(y, draw.hue),
    )
    for i in draw.order:
        x = ops[i](x)
    return x


def gaussian_kernel1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    return (k / k.sum()).float()


def blur_radius(sigma: float, height: int, width: int) -> int:
    """``ceil(3 sigma)``, at most ``min(H, W) - 1`` (reflect padding needs it)."""
    return max(0, min(math.ceil(3.0 * sigma), height - 1, width - 1))


@functools.lru_cache(maxsize=64)
def _blur_scatter(size: int, r: int) -> torch.Tensor:
    """``[size * size, 2r + 1]``: how much tap t of a 1-D kernel adds to entry (i, j) of
    the blur matrix, reflect padding included (taps that fall outside are mirrored
    without repeating the edge, like ``F.pad(mode="reflect")``)."""
    rows = torch.arange(size).repeat_interleave(2 * r + 1)
    taps = torch.arange(2 * r + 1).repeat(size)
    cols = rows + taps - r
    cols = torch.where(cols < 0, -cols, cols)
    cols = torch.where(cols >= size, 2 * (size - 1) - cols, cols)
    a = torch.zeros(size * size, 2 * r + 1)
    a.index_put_((rows * size + cols, taps), torch.ones(len(rows)), accumulate=True)
    return a


def blur_matrix(sigma: float, size: int, r: int) -> torch.Tensor:
    """``[size, size]`` matrix of a 1-D Gaussian blur of radius ``r < size`` with reflect
    padding: ``(M @ v)[i] = sum_t k[t] v[reflect(i + t - r)]``."""
    return (_blur_scatter(size, r) @ gaussian_kernel1d(sigma, r)).view(size, size)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[..., H, W]`` (kernel radius :func:`blur_radius`,
    reflect padding) as two small matrix products, much faster than ``conv2d``
    with one-channel kernels on a CPU."""
    h, w = x.shape[-2:]
    r = blur_radius(sigma, h, w)
    if r == 0:
        return x
    return blur_matrix(sigma, h, r) @ x @ blur_matrix(sigma, w, r).T


def resize_uint8(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of uint8 ``[N, 3, h, w]`` (best in channels-last memory, where
    torch has a fast uint8 kernel) to ``[N, 3, size, size]``, antialiased when shrinking.
    Works on uint8 like PIL-based pipelines do: the output is rounded to uint8."""
    h, w = frames.shape[-2:]
    if (h, w) == (size, size):
        return frames
    return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=(h > size or w > size))


def drop_colors(x: torch.Tensor, keep: int, seed: int) -> torch.Tensor:
    """Colour dropping of ``[N, 3, H, W]`` in [0, 1]: channel ``keep`` stays, the two others
    become its mean plus N(0, (std / 100)^2) noise (Doersch et al. 2015)."""
    kept = x[:, keep]
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype) * (kept.std() / 100.0)
    out = (kept.mean() + noise).clamp_(0.0, 1.0)
    out[:, keep] = kept
    return out


def time_differences(gray: torch.Tensor) -> torch.Tensor:
    """``[T, 1, H, W]`` -> ``[T - 1, 1, H, W]``: frame t+1 minus frame t."""
    return gray[1:] - gray[:-1]


def optical_flow(gray_u8: np.ndarray, dis) -> torch.Tensor:
    """uint8 ``[T, H, W]`` -> float ``[T - 1, 2, H, W]`` DIS flow (dx, dy) in pixels."""
    flows = [dis.calc(gray_u8[t], gray_u8[t + 1], None) for t in range(len(gray_u8) - 1)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- the transform


class ClipTransform:
    """``ClipTransform(cfg, train)(pathways, rng)``: see the module docstring.

    ``pathways``: list of uint8 ``[T_p, H, W, 3]`` (all the same H, W).
    Returns ``[C, T'_p, S, S]`` float32 per pathway (training), or a list over
    ``cfg.test_crops`` crops of such lists (test). ``rng`` (``np.random.Generator``)
    is the only source of randomness; it is not used at test time.
    """

    def __init__(self, cfg: DataConfig, train: bool = True):
        self.cfg = cfg
        self.train = bool(train)
        a = cfg.augment
        if cfg.modality not in MODALITIES:
            raise TransformError(f"unknown data.modality {cfg.modality!r} (allowed: {', '.join(MODALITIES)})")
        if a.crop not in CROPS:
            raise TransformError(f"unknown data.augment.crop {a.crop!r} (allowed: {', '.join(CROPS)})")
        if cfg.crop_size < 1 or cfg.test_short_side < 1:
            raise TransformError(f"data.crop_size and data.test_short_side must be >= 1 "
                                 f"(got {cfg.crop_size}, {cfg.test_short_side})")
        if cfg.test_crops not in (1, 3):
            raise TransformError(f"data.test_crops must be 1 or 3 (got {cfg.test_crops})")
        for name in ("color_p", "grayscale_p", "blur_p", "temporal_diff_p", "color_drop_p"):
            p = getattr(a, name)
            if not 0.0 <= p <= 1.0:
                raise TransformError(f"data.augment.{name} must be a probability in [0, 1] (got {p})")
        checks = [
            ("short_side", a.short_side, lambda lo, hi: 1 <= lo <= hi),
            ("area", a.area, lambda lo, hi: 0 < lo <= hi <= 1),
            ("aspect", a.aspect, lambda lo, hi: 0 < lo <= hi),
            ("blur_sigma", a.blur_sigma, lambda lo, hi: 0 < lo <= hi),
        ]
        for name, (lo, hi), ok in checks:
            if not ok(lo, hi):
                raise TransformError(f"bad data.augment.{name}: [{lo}, {hi}]")
        if not 0 <= a.color_strength <= 5:  # hue = 0.1 s must stay within [-0.5, 0.5]
            raise TransformError(f"data.augment.color_strength must be in [0, 5] (got {a.color_strength})")
        if len(a.mean) != 3 or len(a.std) != 3 or min(a.std) <= 0:
            raise TransformError(f"data.augment.mean/std need 3 values, std > 0 (got {a.mean}, {a.std})")
        self._mean = torch.tensor(a.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(a.std, dtype=torch.float32).view(1, 3, 1, 1)
        self._scale, self._shift = 1.0 / self._std, -self._mean / self._std
        self._dis = None  # cv2 DIS object, made on first use (not picklable)

    def __getstate__(self):  # DataLoader workers pickle the dataset and its transform
        state = dict(self.__dict__)
        state["_dis"] = None
        return state

    # ---------------------------------------------------------------- draws

    def draw(self, rng: np.random.Generator, height: int, width: int) -> ClipDraw:
        """The random parameters of one training clip of ``height x width`` frames."""
        a = self.cfg.augment
        box = self._crop_box(rng, height, width)
        flip = bool(rng.random() < 0.5) if a.flip else False
        color = None
        if rng.random() < a.color_p and a.color_strength > 0:
            s = a.color_strength
            b, c, sat, hue = 0.4 * s, 0.4 * s, 0.4 * s, 0.1 * s
            order = tuple(int(i) for i in rng.permutation(4))
            color = ColorDraw(
                order=order,
                brightness=float(rng.uniform(max(0.0, 1 - b), 1 + b)),
                contrast=float(rng.uniform(max(0.0, 1 - c), 1 + c)),
                saturation=float(rng.uniform(max(0.0, 1 - sat), 1 + sat)),
                hue=float(rng.uniform(-hue, hue)),
            )
        gray = bool(rng.random() < a.grayscale_p)
        sigma = float(rng.uniform(*a.blur_sigma)) if rng.random() < a.blur_p else None
        tdiff = bool(rng.random() < a.temporal_diff_p) and self.cfg.modality == "rgb"
        keep, noise_seed = None, 0
        if a.color_drop_p > 0 and rng.random() < a.color_drop_p and self.cfg.modality == "rgb":
            keep, noise_seed = int(rng.integers(3)), int(rng.integers(2**31))
        return ClipDraw(box=box, flip=flip, color=color, grayscale=gray, blur_sigma=sigma, temporal_diff=tdiff,
                        color_keep=keep, noise_seed=noise_seed)

    def _crop_box(self, rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int, int]:
        a, S = self.cfg.augment, self.cfg.crop_size
        short = min(height, width)
        if a.crop == "center":
            return _centre_box(height, width, short, short)
        if a.crop == "scale_jitter":
            r = max(int(rng.integers(a.short_side[0], a.short_side[1] + 1)), S)
            side = max(1, min(short, round(S * short / r)))
            top = int(rng.integers(0, height - side + 1))
            left = int(rng.integers(0, width - side + 1))
            return top, left, side, side
        # Inception-style, as torchvision RandomResizedCrop.get_params
        area = height * width
        log_lo, log_hi = math.log(a.aspect[0]), math.log(a.aspect[1])
        for _ in range(_RRC_TRIES):
            target = area * rng.uniform(a.area[0], a.area[1])
            ratio = math.exp(rng.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target * ratio)))
            h = int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < a.aspect[0]:
            w, h = width, int(round(width / a.aspect[0]))
        elif in_ratio > a.aspect[1]:
            h, w = height, int(round(height * a.aspect[1]))
        else:
            h, w = height, width
        return _centre_box(height, width, max(1, h), max(1, w))

    def test_boxes(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """Crops (top, left, h, w) in input pixels for test time: short side to
        ``test_short_side``, then 1 centre or 3 long-side crops of ``crop_size``."""
        short = min(height, width)
        side = max(1, min(short, round(self.cfg.crop_size * short / self.cfg.test_short_side)))
        if self.cfg.test_crops == 1:
            return [_centre_box(height, width, side, side)]
        if height > width:  # portrait: top / centre / bottom
            left = (width - side) // 2
            return [(t, left, side, side) for t in (0, (height - side) // 2, height - side)]
        top = (height - side) // 2
        return [(top, l, side, side) for l in (0, (width - side) // 2, width - side)]

    # ---------------------------------------------------------------- apply

    def __call__(self, pathways: Sequence[np.ndarray], rng: Optional[np.random.Generator] = None):
        pathways = _check_pathways(pathways, self.cfg.modality)
        height, width = pathways[0].shape[1:3]
        if not self.train:
            return [self.apply(pathways, ClipDraw(box=b)) for b in self.test_boxes(height, width)]
        if rng is None:
            raise TransformError("a training ClipTransform needs rng (a numpy Generator)")
        return self.apply(pathways, self.draw(rng, height, width))

    def apply(self, pathways: Sequence[np.ndarray], draw: ClipDraw) -> list[torch.Tensor]:
        """Apply ``draw`` to all frames of all pathways: list of ``[C, T'_p, S, S]``."""
        pathways = _check_pathways(pathways, self.cfg.modality)
        if pathways[0].dtype == np.float32:
            return self._apply_stored_flow(pathways, draw)
        top, left, h, w = draw.box
        lengths = [len(p) for p in pathways]
        # one crop + one resize for every frame of every pathway
        crop = np.concatenate([p[:, top:top + h, left:left + w] for p in pathways])  # [N, h, w, 3]
        u8 = torch.from_numpy(crop).permute(0, 3, 1, 2)  # [N, 3, h, w], channels-last memory
        x = resize_uint8(u8, self.cfg.crop_size).float().div_(255.0).contiguous()  # [N, 3, S, S]
        if draw.flip:
            x = x.flip(-1)
        modality = self.cfg.modality
        if modality != "flow":
            if draw.color is not None:
                x = color_jitter(x, draw.color)
            if draw.grayscale:
                x = rgb_to_grayscale(x).expand(-1, 3, -1, -1)
            if draw.blur_sigma is not None:
                x = gaussian_blur(x, draw.blur_sigma)
            if draw.color_keep is not None:
                x = drop_colors(x, draw.color_keep, draw.noise_seed)
        out = []
        for chunk in torch.split(x, lengths):
            if modality == "rgb" and not draw.temporal_diff:
                y = torch.addcmul(self._shift, chunk, self._scale)  # (x - mean) / std
            elif modality == "rgb":
                y = self._temporal_diff_aug(chunk)
            elif modality == "diff":
                y = time_differences(rgb_to_grayscale(chunk)) / self._std
            else:
                y = self._flow(chunk)
            out.append(y.permute(1, 0, 2, 3).contiguous())  # [C, T', S, S]
        return out

    def _temporal_diff_aug(self, chunk: torch.Tensor) -> torch.Tensor:
        """Table 7 augmentation on T frames: T - 1 grayscale differences + the last
        one repeated (zeros for a single frame), scaled like ``diff``."""
        d = time_differences(rgb_to_grayscale(chunk))
        d = torch.cat([d, d[-1:]]) if len(d) else torch.zeros_like(chunk[:, :1])
        return d / self._std

    def _apply_stored_flow(self, pathways: Sequence[np.ndarray], draw: ClipDraw) -> list[torch.Tensor]:
        """Stored fields float32 ``[T, H, W, 2]`` (pixels of the stored frames): the same crop,
        resize and flip as the frames get, with the vectors following the geometry (dx, dy
        scaled by the resize factors; a flip negates dx), then the bound and the mean
        subtraction of the on-the-fly flow."""
        top, left, h, w = draw.box
        size = self.cfg.crop_size
        crop = np.concatenate([p[:, top:top + h, left:left + w] for p in pathways])  # [N, h, w, 2]
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(0, 3, 1, 2)  # [N, 2, h, w]
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=(h > size or w > size))
        x = x * torch.tensor([size / w, size / h]).view(1, 2, 1, 1)
        if draw.flip:
            x = x.flip(-1) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
        x = x.clamp(-FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        return [chunk.permute(1, 0, 2, 3).contiguous() for chunk in torch.split(x, [len(p) for p in pathways])]

    def _flow(self, chunk: torch.Tensor) -> torch.Tensor:
        if self._dis is None:
            import cv2

            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        gray = (rgb_to_grayscale(chunk)[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
        flow = optical_flow(gray, self._dis).clamp_(-FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND
        return flow - flow.mean(dim=(-2, -1), keepdim=True)


def _centre_box(height: int, width: int, h: int, w: int) -> tuple[int, int, int, int]:
    return (height - h) // 2, (width - w) // 2, h, w


def _check_pathways(pathways, modality: str) -> list[np.ndarray]:
    if isinstance(pathways, np.ndarray) or not isinstance(pathways, (list, tuple)) or not pathways:
        raise TransformError("pathways must be a non-empty list of uint8 [T, H, W, 3] arrays")
    out = []
    for i, p in enumerate(pathways):
        if isinstance(p, torch.Tensor):
            p = p.numpy()
        if modality == "flow" and isinstance(p, np.ndarray) and p.dtype == np.float32 and p.ndim == 4 \
                and p.shape[-1] == 2 and min(p.shape[:3]) >= 1:
            kinds = {q.dtype for q in out}
            if kinds - {np.dtype(np.float32)}:
                raise TransformError(f"pathway {i}: stored flow fields mixed with frames")
            out.append(p)  # stored flow fields [T, H, W, 2] (vidssl.data.flow_store): T fields give T
            continue
        if any(q.dtype == np.float32 for q in out):
            raise TransformError(f"pathway {i}: stored flow fields mixed with frames")
        if not isinstance(p, np.ndarray) or p.dtype != np.uint8 or p.ndim != 4 or p.shape[-1] != 3:
            desc = f"{p.dtype} {tuple(p.shape)}" if isinstance(p, np.ndarray) else type(p).__name__
            raise TransformError(f"pathway {i}: expected uint8 frames [T, H, W, 3], got {desc}")
        if min(p.shape[:3]) < 1:
            raise TransformError(f"pathway {i}: empty frames {tuple(p.shape)}")
        if modality in ("diff", "flow") and len(p) < 2:
            raise TransformError(f"pathway {i}: modality {modality!r} needs >= 2 frames (T + 1), got {len(p)}")
        if out and p.shape[1:3] != out[0].shape[1:3]:
            raise TransformError(f"pathway {i}: frame size {p.shape[1:3]} differs from pathway 0 {out[0].shape[1:3]}")
        out.append(p)
    return out
