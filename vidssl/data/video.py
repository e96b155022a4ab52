"""Video decoding: frames at native frame numbers, as uint8 RGB arrays.

Two backends:

- ``pyav``: video files through PyAV (FFmpeg). :func:`read_frames` opens the file
  once per call, seeks to the keyframe before the first needed frame and decodes
  forward to the last needed one, converting only the needed frames to RGB. The
  native number of a decoded frame is its presentation time x the frame rate for
  the first frame after the seek, then +1 per frame, which is exact for
  constant-frame-rate streams; a stream without timestamps (or a seek that lands
  past the target) is decoded from the start, counting frames.
- ``frames``: one folder of JPEG/PNG frames per video, sorted by file name; the
  frame rate comes from an ``fps.txt`` in the folder, else 30.
- ``image``: one JPEG/PNG image read as a static video, the image tiled over
  :data:`STATIC_FRAMES` frames at 30 fps (VIE Sec. 4: multi-frame models probed on
  images); every clip of it is the image repeated.

``read_frames(..., short_side=s)`` returns frames scaled so that their short side is
``s`` (never up): by libswscale inside the decoder for ``pyav`` (area filter, on the
YUV planes before the RGB conversion, so the full-size RGB frame is never made), by
OpenCV's area resize for the other backends. ``threads`` sets FFmpeg's decoding
threads per stream (``None``: FFmpeg's own count, but one inside a DataLoader worker,
where the workers already run in parallel).

Every failure (missing, empty, truncated, corrupt or non-video file) raises
:class:`VideoDecodeError` naming the path and the reason.
"""
from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vidssl.errors import VideoDecodeError

BACKENDS = ("pyav", "frames", "image")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_FRAMES_FPS = 30.0
STATIC_FRAMES = 64  # length of a static-image video (backend "image"): longer than any clip's span


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r} (allowed: {', '.join(BACKENDS)})")


def _stat_key(path: str, backend: str) -> tuple:
    try:
        st = os.stat(path)
    except OSError as e:
        raise VideoDecodeError(path, f"cannot open ({e.strerror or e})") from None
    return (os.path.abspath(path), backend, st.st_mtime_ns, st.st_size)


def probe(path: str | os.PathLike, backend: str = "pyav") -> VideoInfo:
    """Number of frames, frame rate and size of a video (cached per path, size and mtime).

    When the container does not state the number of frames, it is counted by decoding.
    """
    _check_backend(backend)
    return _probe_cached(*_stat_key(str(path), backend))


@functools.lru_cache(maxsize=4096)
def _probe_cached(path: str, backend: str, mtime_ns: int, size: int) -> VideoInfo:
    if backend == "image":
        img = _image(path)
        return VideoInfo(STATIC_FRAMES, DEFAULT_FRAMES_FPS, int(img.shape[1]), int(img.shape[0]))
    return _frames_probe(path) if backend == "frames" else _pyav_probe(path)


def scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` (aspect kept, rounded; never
    larger than the input; None = unchanged)."""
    short = min(width, height)
    if short_side is None or short_side >= short:
        return width, height
    if short_side < 1:
        raise ValueError(f"short_side must be >= 1 (got {short_side})")
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend: str = "pyav", *,
                short_side: int | None = None, threads: int | None = None) -> np.ndarray:
    """Frames at native frame numbers ``indices`` (any order, repeats allowed).

    Returns uint8 ``[len(indices), H, W, 3]`` RGB, scaled to ``short_side`` when given
    (see the module docstring). The video is decoded once per call.
    Raises :class:`VideoDecodeError` (also when a requested frame is past the end).
    """
    _check_backend(backend)
    path = str(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and idx.min() < 0:
        raise ValueError(f"negative frame numbers requested from {path}: {sorted(set(idx[idx < 0].tolist()))[:5]}")
    needed = sorted(set(idx.tolist()))
    if not needed:
        info = probe(path, backend)
        w, h = scaled_size(info.width, info.height, short_side)
        return np.zeros((0, h, w, 3), np.uint8)
    if backend == "image":
        if needed[-1] >= STATIC_FRAMES:
            raise VideoDecodeError(path, f"frame {needed[-1]} requested but a static image video has "
                                         f"{STATIC_FRAMES} frames")
        img = _resize_area(_image(path), short_side)
        return np.broadcast_to(img, (len(idx), *img.shape)).copy()
    if backend == "pyav":
        got = _pyav_read(path, needed, short_side, threads)
    else:
        got = {i: _resize_area(a, short_side) for i, a in _frames_read(path, needed).items()}
    return np.stack([got[i] for i in idx.tolist()])


def _resize_area(img: np.ndarray, short_side: int | None) -> np.ndarray:
    """uint8 [H, W, 3] with its short side at ``short_side`` (OpenCV's area filter)."""
    w, h = scaled_size(img.shape[1], img.shape[0], short_side)
    if (w, h) == (img.shape[1], img.shape[0]):
        return img
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def decode_all(path: str | os.PathLike, backend: str = "pyav", threads: int | None = None) -> int:
    """Decode every frame (to catch corruption anywhere in the file); the number of frames.
    ``threads``: FFmpeg's decoding threads (as for :func:`read_frames`)."""
    _check_backend(backend)
    path = str(path)
    if backend == "image":
        _image(path)
        return STATIC_FRAMES
    if backend == "frames":
        files = _frame_files(path)
        for f in files:
            _imread(path, f)
        return len(files)
    with _open(path, threads) as (container, stream):
        n = 0
        try:
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                n += 1
        except Exception as e:  # noqa: BLE001 - FFmpeg errors come in many types
            raise VideoDecodeError(path, f"decoding failed after {n} frames ({_why(e)})") from None
    if n == 0:
        raise VideoDecodeError(path, "no frames could be decoded")
    return n


def iter_frames(path: str | os.PathLike, backend: str = "pyav", gray: bool = False) -> Iterator[np.ndarray]:
    """Every frame in order: uint8 ``[H, W, 3]`` RGB, or ``[H, W]`` grey (ITU-R 601 luma)
    with ``gray=True``. Streams (memory stays one frame); errors as VideoDecodeError."""
    _check_backend(backend)
    path = str(path)
    if backend == "image":
        img = _image(path)
        for _ in range(STATIC_FRAMES):
            yield _rgb_to_gray(img) if gray else img
        return
    if backend == "frames":
        for f in _frame_files(path):
            img = _imread(path, f)
            yield _rgb_to_gray(img) if gray else img
        return
    n = 0
    with _open(path) as (container, stream):
        try:
            for frame in container.decode(stream):
                img = frame.to_ndarray(format="gray" if gray else "rgb24")
                n += 1
                yield img
        except VideoDecodeError:
            raise
        except Exception as e:  # noqa: BLE001 - FFmpeg errors come in many types
            raise VideoDecodeError(path, f"decoding failed after {n} frames ({_why(e)})") from None
    if n == 0:
        raise VideoDecodeError(path, "no frames could be decoded")


def _rgb_to_gray(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


# ----------------------------------------------------------------------------- PyAV


def _why(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def _in_worker() -> bool:
    """Inside a DataLoader worker? (Without torch imported there can be none: skip the import.)"""
    data = sys.modules.get("torch.utils.data")
    return data is not None and data.get_worker_info() is not None


class _open:
    """Context manager: (container, first video stream), errors as VideoDecodeError.

    ``threads``: FFmpeg's decoding threads (frame and slice threading); None = FFmpeg's
    count (one per core) in the main process and 1 inside a DataLoader worker."""

    def __init__(self, path: str, threads: int | None = None):
        self.path = path
        self.threads = threads

    def __enter__(self):
        import av

        path = self.path
        if os.path.isdir(path):
            raise VideoDecodeError(path, "is a folder, not a video file (use backend 'frames' for frame folders)")
        if not os.path.exists(path):
            raise VideoDecodeError(path, "file does not exist")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(path, "empty file (0 bytes)")
        try:
            self.container = av.open(path, mode="r", metadata_errors="ignore")
        except Exception as e:  # noqa: BLE001
            raise VideoDecodeError(path, f"not a readable video ({_why(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoDecodeError(path, "the file has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        if self.threads is not None:
            stream.thread_count = self.threads
        elif _in_worker():  # DataLoader workers already run in parallel: one decoding thread each
            stream.thread_count = 1
        return self.container, stream

    def __exit__(self, *exc):
        self.container.close()
        return False


def _stream_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


def _pyav_probe(path: str) -> VideoInfo:
    with _open(path) as (container, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        n = int(stream.frames or 0)
        fps = _stream_fps(stream)
        if n <= 0:  # mkv/webm do not store a frame count: count by decoding
            try:
                n = sum(1 for _ in container.decode(stream))
            except Exception as e:  # noqa: BLE001
                raise VideoDecodeError(path, f"decoding failed while counting frames ({_why(e)})") from None
        if fps is None:
            dur = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
            fps = n / dur if dur > 0 else DEFAULT_FRAMES_FPS
    if n <= 0:
        raise VideoDecodeError(path, "the video has no frames")
    if not width or not height:
        raise VideoDecodeError(path, "the video stream has no frame size")
    return VideoInfo(n, fps, int(width), int(height))


def _pyav_read(path: str, needed: list[int], short_side: int | None = None,
               threads: int | None = None) -> dict[int, np.ndarray]:
    """Decode frames ``needed`` (sorted, unique) in one pass; {frame number: RGB array},
    scaled by libswscale to ``short_side`` when given."""
    with _open(path, threads) as (container, stream):
        size = scaled_size(stream.codec_context.width, stream.codec_context.height, short_side)
        convert = _converter(size if size != (stream.codec_context.width, stream.codec_context.height) else None)
        fps = _stream_fps(stream)
        tb = stream.time_base
        start = stream.start_time if stream.start_time is not None else 0
        if fps is not None and tb is not None and needed[0] > 0:
            # seek to the keyframe at or before the pts half a frame before the target
            target = start + int(math.floor((needed[0] - 0.5) / fps / float(tb)))
            try:
                container.seek(max(target, start), stream=stream, backward=True, any_frame=False)
            except Exception:  # noqa: BLE001 - not seekable: decode from the start below
                pass
            else:
                out = _decode_forward(container, stream, needed, fps, tb, start, convert, from_start=False,
                                      path=path)
                if out is not None:
                    return out
        else:
            return _decode_forward(container, stream, needed, fps, tb, start, convert, from_start=True, path=path)
    # the seek could not be trusted: open again and count frames from the start
    with _open(path, threads) as (container, stream):
        return _decode_forward(container, stream, needed, fps, tb, start, convert, from_start=True, path=path)


def _converter(size: tuple[int, int] | None):
    """frame -> uint8 [H, W, 3] RGB, at ``size`` (width, height) when given: one libswscale
    call does the scaling and the YUV -> RGB conversion."""
    if size is None:
        return lambda frame: frame.to_ndarray(format="rgb24")
    w, h = size
    return lambda frame: frame.to_ndarray(width=w, height=h, format="rgb24", interpolation="AREA")


def _decode_forward(container, stream, needed, fps, tb, start, convert, *, from_start: bool,
                    path: str) -> dict | None:
    """Decode from the current position; None when the position cannot be trusted (after a seek).

    From the start, frames are simply counted. After a seek, the first frame's number
    comes from its timestamp; a missing timestamp or a landing after the first needed
    frame returns None so that the caller decodes from the start.
    """
    want = set(needed)
    last = needed[-1]
    out: dict[int, np.ndarray] = {}
    pos = -1
    try:
        for frame in container.decode(stream):
            if pos < 0 and not from_start:
                if frame.pts is None or fps is None or tb is None:
                    return None
                pos = int(round(float((frame.pts - start) * tb) * fps))
                if pos > needed[0] or pos < 0:
                    return None
            else:
                pos += 1
            if pos in want:
                out[pos] = convert(frame)
            if pos >= last:
                break
    except Exception as e:  # noqa: BLE001
        raise VideoDecodeError(path, f"decoding failed near frame {max(pos, 0)} ({_why(e)})") from None
    if len(out) < len(want):
        missing = sorted(want - set(out))
        if pos < 0:
            raise VideoDecodeError(path, "no frames could be decoded")
        raise VideoDecodeError(path, f"frame {missing[0]} requested but the video ends after {pos + 1} frames")
    return out


# ----------------------------------------------------------------------------- frame folders


def _frame_files(path: str) -> list[str]:
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a folder of frames"
        raise VideoDecodeError(path, what)
    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise VideoDecodeError(path, f"no frame images ({', '.join(IMAGE_EXTENSIONS)}) in the folder")
    return files


def _imread(folder: str, name: str) -> np.ndarray:
    import cv2

    img = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
    if img is None:
        raise VideoDecodeError(folder, f"cannot read frame image {name}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _image(path: str) -> np.ndarray:
    """One image file as uint8 RGB [H, W, 3] (backend ``image``)."""
    if os.path.isdir(path):
        raise VideoDecodeError(path, "is a folder, not an image file (backend 'frames' reads frame folders)")
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file does not exist")
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise VideoDecodeError(path, "not a readable image (JPEG/PNG)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _frames_fps(path: str) -> float:
    f = Path(path) / "fps.txt"
    if not f.is_file():
        return DEFAULT_FRAMES_FPS
    text = f.read_text().strip()
    try:
        fps = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise VideoDecodeError(path, f"fps.txt holds {text!r}, not a frame rate") from None
    if not fps > 0:
        raise VideoDecodeError(path, f"fps.txt holds {text!r}, not a positive frame rate")
    return fps


def _frames_probe(path: str) -> VideoInfo:
    files = _frame_files(path)
    first = _imread(path, files[0])
    return VideoInfo(len(files), _frames_fps(path), int(first.shape[1]), int(first.shape[0]))


def _frames_read(path: str, needed: list[int]) -> dict[int, np.ndarray]:
    files = _frame_files(path)
    if needed[-1] >= len(files):
        raise VideoDecodeError(path, f"frame {needed[-1]} requested but the folder holds {len(files)} frames")
    out = {i: _imread(path, files[i]) for i in needed}
    shapes = {a.shape for a in out.values()}
    if len(shapes) > 1:
        raise VideoDecodeError(path, f"frames of different sizes {sorted(shapes)}")
    return out
