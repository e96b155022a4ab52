"""Which frames: native frame indices of the clips of one video (pure numpy).

Time model
----------
Clip parameters are in frames at the *target* frame rate ``F = cfg.fps`` (the
video's own rate ``f`` when ``cfg.fps`` is null); ``t_max`` is in seconds. A video
of ``N`` native frames lasts ``M = N * F / f`` target-rate frames. A clip of ``n``
frames at stride ``tau`` samples the target-rate positions ``p_k = s + k * tau``
(``k = 0 .. n-1``) and *spans* ``n * tau`` target-rate frames (``n * tau / F``
seconds; the large-scale study, Sec. 3: "T x tau define the timespan"), so its
start ``s`` lies in ``[0, M - n * tau]``. A position is mapped to the native frame
nearest in time: ``round(p_k * f / F)`` (the sampled time ``t = p_k / F`` times
``f``; halves round up), clamped to ``[0, N - 1]`` (a rounding at the very end).

Clip lengths per pathway (``cfg.sampler``):

- ``"clips"``: one pathway of ``T = cfg.num_frames`` frames at stride
  ``tau = cfg.stride`` (default 8 x 8, Table 17 of the large-scale study).
- ``"two_rate"`` (SlowFast): slow ``T`` frames at stride ``tau`` and fast
  ``alpha * T`` frames at stride ``tau / alpha`` (``alpha = cfg.fast_alpha``), both
  from the same start, so they cover the same span.
- ``"segments"`` (TSN/TRN, VIE Sec. 3.2): ``K = cfg.segments`` equal segments of the
  *whole* video (native frames; ``fps``, ``t_max`` and the fps jitter do not apply),
  one frame from each: a uniformly random frame of the segment in training, the
  centre frame at test time. With ``cfg.segment_seconds`` (VIE-TRN, App. B: four
  consecutive half-second bins) the segments are ``K`` consecutive bins of that many
  seconds at a uniformly random place (training; one frame drawn in each bin) or at
  ``num_clips`` evenly spread places (test; the centre frame of each bin).

- ``"sequence"`` (video CPC, Sec. 3.1 and 4.2): the ``cfg.views`` clips are the
  consecutive *segments* of one sequence: clip ``v`` starts ``v * hop`` target-rate
  frames after clip 0 (``hop = cfg.hop``, default half a clip's span ``T * tau / 2``:
  segments of F frames overlapping by F / 2). Clip 0 starts uniformly in
  ``{0 .. floor(M - span)}`` where ``span = (V - 1) * hop + T * tau`` covers the whole
  sequence; ``t_max`` does not apply; with fps jitter one factor per video scales
  ``tau`` and ``hop`` together. At test time the sampler is ``"clips"``: the segments
  of a linear probe or fine-tuning are uniformly spaced clips of ``T`` frames.

``cfg.modality`` ``"diff"`` and ``"flow"`` need one extra frame per pathway
(``T + 1`` frames give ``T`` differences or flow fields); with ``"segments"`` they
use ``K + 1`` segments (``K`` differences between consecutive segment frames).

Training (:func:`train_clip_indices`)
-------------------------------------
``cfg.views`` clips (rho, large-scale study Sec. 3). With ``augment.fps_jitter = j``
each clip's stride is multiplied by its own factor drawn uniformly from
``[1 - j, 1 + j]`` (Table 7 "fps jitter"). Starts are whole target-rate frames.
``t_max`` (Sec. 4.2, Table 4) is honoured like this: let ``L`` be the last valid
start (``floor(M - span)``, using the longest span among the views) and
``W = min(floor(t_max * F), L)`` the window in target-rate frames; first a window
start ``w`` is drawn uniformly from ``{0 .. L - W}``, then each clip's start
independently and uniformly from ``{w .. w + W}``. So every two clip starts are at
most ``W / F <= t_max`` seconds apart, ``t_max = 0`` gives clips that start
together, and every start in ``{0 .. L}`` can be drawn. ``t_max = null`` means
``W = L``: independent uniform starts over the whole video ("global sampling").

Test (:func:`test_clip_indices`)
--------------------------------
``num_clips`` deterministic clips whose starts are uniformly spaced over the valid
start range: clip ``i`` starts at ``(i + 0.5) / num_clips * (M - span)`` (the centre
of the ``i``-th of ``num_clips`` equal parts; one clip = the centre clip). App. B.2:
10 clips along the temporal axis.

Short videos (``cfg.short_video``)
----------------------------------
A video shorter than a clip's span (``M < span``; for ``"sequence"`` the span of the
whole sequence) uses start 0 for every clip (the sequence) and
a deterministic rule for the positions past the end: ``"loop"`` wraps the native
index modulo ``N`` (the video repeats), ``"pad"`` repeats the last frame
(``min(index, N - 1)``). A 1-frame video gives index 0 everywhere.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from vidssl.config import DataConfig
from vidssl.errors import SamplingError

# Positions that should sit exactly on a half (or a whole) can land a hair below it
# in floating point; this nudge makes rounding and flooring stable.
_EPS = 1e-6

SAMPLERS = ("clips", "segments", "two_rate", "sequence")
SHORT_VIDEO_RULES = ("loop", "pad")


# ----------------------------------------------------------------------------- checks


def _check_video(num_frames, fps) -> tuple[int, float]:
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise SamplingError(f"num_frames must be a positive integer (got {num_frames!r}): the video has no frames")
    if fps is None or not math.isfinite(float(fps)) or float(fps) <= 0:
        raise SamplingError(f"fps must be a positive number (got {fps!r})")
    return int(num_frames), float(fps)


def _check_cfg(cfg: DataConfig) -> None:
    if cfg.sampler not in SAMPLERS:
        raise SamplingError(f"unknown data.sampler {cfg.sampler!r} (allowed: {', '.join(SAMPLERS)})")
    if cfg.short_video not in SHORT_VIDEO_RULES:
        raise SamplingError(f"unknown data.short_video {cfg.short_video!r} (allowed: {', '.join(SHORT_VIDEO_RULES)})")
    if cfg.hop is not None and cfg.hop < 1:
        raise SamplingError(f"data.hop must be >= 1 target-rate frames or null (got {cfg.hop})")
    for key in ("num_frames", "stride", "views", "segments", "fast_alpha"):
        if getattr(cfg, key) < 1:
            raise SamplingError(f"data.{key} must be >= 1 (got {getattr(cfg, key)})")
    if cfg.fps is not None and not (math.isfinite(cfg.fps) and cfg.fps > 0):
        raise SamplingError(f"data.fps must be a positive number or null (got {cfg.fps!r})")
    if cfg.t_max is not None and not cfg.t_max >= 0:
        raise SamplingError(f"data.t_max must be >= 0 seconds or null (got {cfg.t_max!r})")
    j = cfg.augment.fps_jitter
    if not 0 <= j < 1:
        raise SamplingError(f"data.augment.fps_jitter must be in [0, 1) (got {j!r})")


def _extra_frames(cfg: DataConfig) -> int:
    """Differences and flow fields need one more frame than they produce."""
    return 1 if cfg.modality in ("diff", "flow") else 0


def _pathways(cfg: DataConfig) -> list[tuple[int, float]]:
    """(frames, stride in target-rate frames) for each pathway of a clip."""
    extra = _extra_frames(cfg)
    T, tau = cfg.num_frames, float(cfg.stride)
    if cfg.sampler == "two_rate":
        a = cfg.fast_alpha
        return [(T + extra, tau), (a * T + extra, tau / a)]
    return [(T + extra, tau)]


def _span(paths: list[tuple[int, float]], scale: float) -> float:
    return max(n * stride * scale for n, stride in paths)


# ----------------------------------------------------------------------------- index arithmetic


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5 + _EPS).astype(np.int64)


def _native(positions: np.ndarray, ratio: float, num_frames: int, short: bool, rule: str) -> np.ndarray:
    """Target-rate positions -> native frame indices (``ratio`` = native / target fps)."""
    idx = _round_half_up(positions * ratio)
    if short and rule == "loop":
        return idx % num_frames
    return np.clip(idx, 0, num_frames - 1)


def _clip(start: float, paths, scale: float, ratio: float, num_frames: int, short: bool, rule: str) -> list[np.ndarray]:
    return [
        _native(start + np.arange(n) * stride * scale, ratio, num_frames, short, rule)
        for n, stride in paths
    ]


def _target_fps(fps: float, cfg: DataConfig) -> float:
    return float(cfg.fps) if cfg.fps is not None else fps


# ----------------------------------------------------------------------------- segments


def _segment_frames(num_frames: int, k: int, offsets: np.ndarray, start: float = 0.0,
                    length: Optional[float] = None) -> np.ndarray:
    """Frame ``floor(start + (i + offset_i) * length / k)`` of each of ``k`` equal segments of
    the window ``[start, start + length)`` (default: the whole video, ``[0, N)``)."""
    length = num_frames if length is None else length
    pos = start + (np.arange(k) + offsets) * (length / k)
    return np.clip(np.floor(pos + _EPS).astype(np.int64), 0, num_frames - 1)


def _segment_window(num_frames: int, fps: float, k: int, cfg: DataConfig, where: float) -> tuple[float, float]:
    """(start, length) in native frames of the span the ``k`` segments cut: the whole video,
    or with ``cfg.segment_seconds`` the ``k`` consecutive bins of that many seconds (VIE-TRN:
    four half-second bins), placed at fraction ``where`` of the free range; a video shorter
    than the bins uses its whole length."""
    if cfg.segment_seconds is None:
        return 0.0, float(num_frames)
    length = k * cfg.segment_seconds * fps
    if length >= num_frames:
        return 0.0, float(num_frames)
    return float(math.floor(where * (num_frames - length) + _EPS)), length  # bins start on a frame


def _num_segments(cfg: DataConfig) -> int:
    return cfg.segments + _extra_frames(cfg)


# ----------------------------------------------------------------------------- sequence


def sequence_hop(cfg: DataConfig) -> float:
    """Target-rate frames between the starts of consecutive segments (``data.hop``, or half
    a segment's span ``T * tau / 2``)."""
    return float(cfg.hop) if cfg.hop is not None else cfg.num_frames * cfg.stride / 2.0


def _sequence(rng: np.random.Generator, num_frames: int, fps: float, cfg: DataConfig) -> list[list[np.ndarray]]:
    F = _target_fps(fps, cfg)
    ratio = fps / F
    length = num_frames / ratio
    paths = _pathways(cfg)
    j = cfg.augment.fps_jitter
    scale = float(rng.uniform(1 - j, 1 + j)) if j > 0 else 1.0
    hop = sequence_hop(cfg) * scale
    span = (cfg.views - 1) * hop + _span(paths, scale)
    last = math.floor(length - span + _EPS)
    short = last < 0
    start = 0 if short else int(rng.integers(0, last + 1))
    return [
        _clip(start + v * hop, paths, scale, ratio, num_frames, short, cfg.short_video)
        for v in range(cfg.views)
    ]


# ----------------------------------------------------------------------------- public API


def train_clip_indices(rng: np.random.Generator, num_frames: int, fps: float, cfg: DataConfig) -> list[list[np.ndarray]]:
    """Native frame indices of the ``cfg.views`` training clips of one video.

    Args:
        rng: the only source of randomness (``np.random.Generator``).
        num_frames: ``N``, native frames of the video (>= 1).
        fps: the video's native frame rate ``f``.
        cfg: ``num_frames`` (T), ``stride`` (tau), ``fps``, ``views``, ``t_max``,
            ``sampler``, ``segments``, ``fast_alpha``, ``short_video``, ``modality``,
            ``augment.fps_jitter`` (see the module docstring for the exact rules).

    Returns:
        ``views[v][p]``: int64 array of native indices of pathway ``p`` of clip ``v``;
        lengths ``T`` (``"clips"``, ``"sequence"``), ``[T, alpha * T]`` (``"two_rate"``), ``K``
        (``"segments"``), each + 1 for ``modality`` ``diff`` / ``flow``.
    """
    num_frames, fps = _check_video(num_frames, fps)
    _check_cfg(cfg)
    if cfg.sampler == "segments":
        k = _num_segments(cfg)
        out = []
        for _ in range(cfg.views):
            where = float(rng.random()) if cfg.segment_seconds is not None else 0.0  # no draw without bins
            start, length = _segment_window(num_frames, fps, k, cfg, where)
            out.append([_segment_frames(num_frames, k, rng.random(k), start, length)])
        return out
    if cfg.sampler == "sequence":
        return _sequence(rng, num_frames, fps, cfg)

    F = _target_fps(fps, cfg)
    ratio = fps / F
    length = num_frames / ratio  # M, the video's length in target-rate frames
    paths = _pathways(cfg)
    j = cfg.augment.fps_jitter
    scales = rng.uniform(1 - j, 1 + j, size=cfg.views) if j > 0 else np.ones(cfg.views)
    last = math.floor(length - max(_span(paths, s) for s in scales) + _EPS)  # L, last valid start
    if last < 0:
        starts = np.zeros(cfg.views, dtype=np.int64)
        short = True
    else:
        window = last if cfg.t_max is None else min(math.floor(cfg.t_max * F + _EPS), last)
        w0 = int(rng.integers(0, last - window + 1)) if window < last else 0
        starts = w0 + rng.integers(0, window + 1, size=cfg.views)
        short = False
    return [
        _clip(float(s), paths, float(scale), ratio, num_frames, short, cfg.short_video)
        for s, scale in zip(starts, scales)
    ]


def test_clip_indices(num_frames: int, fps: float, cfg: DataConfig, num_clips: Optional[int] = None) -> list[list[np.ndarray]]:
    """Native frame indices of ``num_clips`` uniformly spaced test clips (deterministic).

    Clip ``i`` starts at ``(i + 0.5) / num_clips`` of the valid start range
    (``[0, M - span]`` target-rate frames); ``"segments"`` takes, in each segment,
    the frame at fraction ``(i + 0.5) / num_clips`` of it (one clip: the centres).
    No fps jitter at test time. ``num_clips`` defaults to ``cfg.test_clips``.

    Returns:
        ``clips[i][p]``: int64 array of native indices, as :func:`train_clip_indices`.
    """
    num_frames, fps = _check_video(num_frames, fps)
    _check_cfg(cfg)
    num_clips = cfg.test_clips if num_clips is None else num_clips
    if isinstance(num_clips, bool) or int(num_clips) != num_clips or num_clips < 1:
        raise SamplingError(f"num_clips must be a positive integer (got {num_clips!r})")
    centres = (np.arange(num_clips) + 0.5) / num_clips
    if cfg.sampler == "segments":
        k = _num_segments(cfg)
        # with bins: the window at fraction c of the free range, the centre frame of each bin;
        # without: the frame at fraction c of each segment of the whole video
        return [[_segment_frames(num_frames, k, np.full(k, 0.5 if cfg.segment_seconds is not None else c),
                                 *_segment_window(num_frames, fps, k, cfg, c))] for c in centres]

    F = _target_fps(fps, cfg)
    ratio = fps / F
    paths = _pathways(cfg)
    free = num_frames / ratio - _span(paths, 1.0)
    short = free < -_EPS
    starts = np.zeros(num_clips) if short else centres * max(free, 0.0)
    return [_clip(float(s), paths, 1.0, ratio, num_frames, short, cfg.short_video) for s in starts]


# pytest collects module-level functions named test_* from imported modules in tests;
# this is a library function, not a test.
test_clip_indices.__test__ = False
