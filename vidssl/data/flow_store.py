"""Stored optical flow: extraction of a manifest to JPEG pairs, and reading it back.

Video CPC (Sec. 4.2) trains on flow computed once with OpenCV's TV-L1 (precise) or
DIS (fast), "thresholded between [-10, 10] and quantized on 256 values to have jpeg
images"; :func:`extract_flow_manifest` is that step (``vidssl flow extract``) and
``data.flow_root`` makes the dataset read these fields instead of computing DIS on
the fly.

Layout (the two-stream / TSN convention, so folders other tools wrote read as well)::

    <root>/<video stem>/flow_x_00001.jpg, flow_y_00001.jpg, flow_x_00002.jpg, ...
                        flow.json

Field ``j`` (0-based; files numbered ``j + 1``) is the flow from frame ``j`` to frame
``j + 1``: a video of N frames has N - 1 fields. A pixel value ``u`` stands for
``u * 2 b / 255 - b`` pixels, ``b`` the bound (:func:`quantise` / :func:`dequantise`),
in pixels of the stored fields (frames are downscaled to ``short_side`` first; the
paper's frames are 256 x 342). ``flow.json`` holds ``format``, ``method``, ``bound``,
``fields``, ``fps``, ``width``, ``height`` (of the fields), ``source`` (the video)
and ``source_size``. A folder without it (another tool's) is read with the bound
given to the reader and 30 fps unless an ``fps.txt`` says otherwise.

Each video is written into a temporary folder ``.<stem>.<pid>.tmp`` which is renamed
to ``<stem>`` when complete: a folder that exists is done, so a killed job resumes
where it stopped and a reader never sees half a video.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from vidssl.data.video import DEFAULT_FRAMES_FPS, VideoInfo, iter_frames, probe
from vidssl.errors import FlowStoreError
from vidssl.shards import record_result, run_jobs, shard_indices

FORMAT = "vidssl-flow/1"
METHODS = ("tvl1", "dis")
FIELD_FILES = ("flow_x_{:05d}.jpg", "flow_y_{:05d}.jpg")


@dataclass(frozen=True)
class FlowOptions:
    """How flow is computed and stored (defaults: CPC Sec. 4.2)."""

    method: str = "tvl1"  # "tvl1" (OpenCV contrib DualTVL1, precise) or "dis" (DIS fast preset)
    bound: float = 10.0  # pixels; fields are clipped to [-bound, bound] before 8-bit quantisation
    short_side: Optional[int] = 256  # downscale frames to this short side first (never upscaled); None = native
    quality: int = 95  # JPEG quality
    backend: str = "pyav"  # how the videos are decoded ("pyav" or "frames")

    def __post_init__(self):
        if self.method not in METHODS:
            raise FlowStoreError(f"unknown flow method {self.method!r} (allowed: {', '.join(METHODS)})")
        if not self.bound > 0:
            raise FlowStoreError(f"flow bound must be > 0, got {self.bound}")
        if self.short_side is not None and self.short_side < 8:
            raise FlowStoreError(f"short side must be >= 8 pixels, got {self.short_side}")
        if not 1 <= self.quality <= 100:
            raise FlowStoreError(f"JPEG quality must be in 1..100, got {self.quality}")


# ----------------------------------------------------------------------------- values


def quantise(flow: np.ndarray, bound: float) -> np.ndarray:
    """float pixels -> uint8: clip to [-bound, bound], map linearly onto 0..255, round."""
    u = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.rint(u).astype(np.uint8)


def dequantise(u8: np.ndarray, bound: float) -> np.ndarray:
    """uint8 -> float32 pixels: the inverse of :func:`quantise` (error <= bound / 255)."""
    return (u8.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)).astype(np.float32)


def flow_function(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``calc(prev, next)`` on uint8 grey ``[H, W]`` -> float32 ``[H, W, 2]`` (dx, dy) pixels."""
    import cv2

    if method == "dis":
        algo = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    elif method == "tvl1":
        optflow = getattr(cv2, "optflow", None)
        if optflow is None or not hasattr(optflow, "DualTVL1OpticalFlow_create"):
            raise FlowStoreError(
                "TV-L1 flow needs OpenCV's contrib modules (cv2.optflow): "
                "pip uninstall -y opencv-python-headless && pip install opencv-contrib-python-headless"
            )
        algo = optflow.DualTVL1OpticalFlow_create()  # OpenCV defaults (Sanchez Perez et al. 2013)
    else:
        raise FlowStoreError(f"unknown flow method {method!r} (allowed: {', '.join(METHODS)})")
    return lambda prev, nxt: algo.calc(prev, nxt, None)


# ----------------------------------------------------------------------------- layout


def flow_folder(root: str | os.PathLike, video: str | os.PathLike) -> Path:
    """Where the fields of ``video`` live: ``<root>/<video stem>``."""
    return Path(root) / Path(str(video).rstrip("/\\")).stem


def stem_collisions(videos: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of videos that would share a flow folder (same file stem)."""
    seen: dict[str, str] = {}
    out = []
    for v in videos:
        stem = Path(str(v).rstrip("/\\")).stem
        if stem in seen and seen[stem] != v:
            out.append((seen[stem], v))
        seen.setdefault(stem, v)
    return out


def missing_folders(root: str | os.PathLike, videos: Sequence[str]) -> list[str]:
    """Videos of ``videos`` whose flow folder does not exist under ``root``."""
    return [v for v in videos if not flow_folder(root, v).is_dir()]


FRAME_COUNT_SLACK = 2  # a container's stated frame count may be off by a frame or two from the decoded one


def mismatched_folders(root: str | os.PathLike, videos: Sequence[str], backend: str = "pyav",
                       limit: int = 3) -> list[tuple[str, int, int]]:
    """(video, frames its flow folder joins, frames of the video) for the first ``limit``
    videos whose stored flow does not fit them (more than :data:`FRAME_COUNT_SLACK` frames
    apart: flow of another video or another frame rate). Videos missing on disk are not
    checked (the flow alone is read)."""
    out = []
    for v in videos:
        folder = flow_folder(root, v)
        if not folder.is_dir() or not os.path.exists(v):
            continue
        stored = probe_flow(folder).num_frames
        try:
            actual = probe(v, backend).num_frames
        except ValueError:  # an undecodable video is the dataset's business (replaced and reported)
            continue
        if abs(stored - actual) > FRAME_COUNT_SLACK:
            out.append((v, stored, actual))
            if len(out) >= limit:
                break
    return out


def _meta(folder: str) -> dict:
    f = Path(folder) / "flow.json"
    if not f.is_file():
        return {}
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise FlowStoreError(f"{f}: unreadable ({e})") from None
    if meta.get("format") != FORMAT:
        raise FlowStoreError(f"{f}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def _count_fields(folder: str) -> int:
    names = set(os.listdir(folder))
    n = 0
    while FIELD_FILES[0].format(n + 1) in names and FIELD_FILES[1].format(n + 1) in names:
        n += 1
    return n


def probe_flow(folder: str | os.PathLike) -> VideoInfo:
    """VideoInfo of a flow folder: ``num_frames`` = fields + 1 (the frames the fields join),
    the frame rate and the field size. Cached per folder and modification time."""
    folder = str(folder)
    try:
        st = os.stat(folder)
    except OSError:
        raise FlowStoreError(f"{folder}: no flow folder (run `vidssl flow extract` for this manifest)") from None
    return _probe_cached(os.path.abspath(folder), st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _probe_cached(folder: str, mtime_ns: int) -> VideoInfo:
    if not os.path.isdir(folder):
        raise FlowStoreError(f"{folder}: not a folder of flow fields")
    meta = _meta(folder)
    n = _count_fields(folder)
    if n == 0:
        raise FlowStoreError(f"{folder}: no flow fields ({FIELD_FILES[0].format(1)} and {FIELD_FILES[1].format(1)})")
    if meta and meta.get("fields") != n:
        raise FlowStoreError(f"{folder}: flow.json says {meta.get('fields')} fields, the folder holds {n}")
    if meta:
        fps, width, height = float(meta["fps"]), int(meta["width"]), int(meta["height"])
    else:
        fps = _fps_txt(folder)
        height, width = _read_u8(folder, FIELD_FILES[0].format(1)).shape
    return VideoInfo(n + 1, fps, width, height)


def _fps_txt(folder: str) -> float:
    f = Path(folder) / "fps.txt"
    if not f.is_file():
        return DEFAULT_FRAMES_FPS
    try:
        return float(Fraction(f.read_text().strip()))
    except (ValueError, ZeroDivisionError):
        raise FlowStoreError(f"{f}: not a frame rate") from None


def _read_u8(folder: str, name: str) -> np.ndarray:
    import cv2

    img = cv2.imread(os.path.join(folder, name), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise FlowStoreError(f"{folder}: cannot read {name}")
    return img


def folder_bound(folder: str | os.PathLike, default: float) -> float:
    """The bound the folder was quantised with: flow.json's, else ``default``."""
    return float(_meta(str(folder)).get("bound", default))


def read_flow(folder: str | os.PathLike, fields: Sequence[int], default_bound: float) -> np.ndarray:
    """Fields ``fields`` (0-based, any order, repeats allowed) as float32 ``[n, H, W, 2]``
    (dx, dy) in pixels of the stored fields."""
    folder = str(folder)
    info = probe_flow(folder)
    idx = [int(j) for j in fields]
    bad = [j for j in idx if not 0 <= j < info.num_frames - 1]
    if bad:
        raise FlowStoreError(f"{folder}: field {bad[0]} requested but the folder holds {info.num_frames - 1}")
    bound = folder_bound(folder, default_bound)
    cache: dict[int, np.ndarray] = {}
    for j in sorted(set(idx)):
        xy = [_read_u8(folder, f.format(j + 1)) for f in FIELD_FILES]
        if xy[0].shape != (info.height, info.width) or xy[1].shape != xy[0].shape:
            raise FlowStoreError(f"{folder}: field {j} is {xy[0].shape}/{xy[1].shape}, "
                                 f"expected {(info.height, info.width)}")
        cache[j] = dequantise(np.stack(xy, axis=-1), bound)
    if not idx:
        return np.zeros((0, info.height, info.width, 2), np.float32)
    return np.stack([cache[j] for j in idx])


# ----------------------------------------------------------------------------- extraction


def _downscale(gray: np.ndarray, short_side: Optional[int]) -> np.ndarray:
    import cv2

    h, w = gray.shape
    if short_side is None or min(h, w) <= short_side:
        return gray
    s = short_side / min(h, w)
    return cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def extract_video_flow(video: str, folder: str | os.PathLike, opts: FlowOptions) -> dict:
    """Compute and store every field of ``video`` in ``folder`` (atomically: a temporary
    folder renamed when complete). Returns {"fields": n, "seconds": s}."""
    import cv2

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    calc = flow_function(opts.method)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(opts.quality)]
    try:
        prev, n, size = None, 0, None
        for gray in iter_frames(video, opts.backend, gray=True):
            size = size or (gray.shape[1], gray.shape[0])
            gray = np.ascontiguousarray(_downscale(gray, opts.short_side))
            if prev is not None:
                if gray.shape != prev.shape:
                    raise FlowStoreError(f"{video}: frame size changes from {prev.shape} to {gray.shape}")
                u8 = quantise(calc(prev, gray), opts.bound)
                n += 1
                for c, name in enumerate(FIELD_FILES):
                    if not cv2.imwrite(str(tmp / name.format(n)), u8[..., c], params):
                        raise FlowStoreError(f"{tmp}: cannot write {name.format(n)}")
            prev = gray
        if n == 0:
            raise FlowStoreError(f"{video}: a single frame gives no flow field")
        fps = probe(video, opts.backend).fps
        meta = {"format": FORMAT, "method": opts.method, "bound": opts.bound, "fields": n, "fps": fps,
                "width": int(prev.shape[1]), "height": int(prev.shape[0]), "source": str(video),
                "source_size": list(size), "options": asdict(opts)}
        (tmp / "flow.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():  # another worker finished it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"fields": n, "seconds": time.perf_counter() - t0}


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one OpenCV thread per worker process


def _run_job(args) -> tuple[str, int, Optional[str]]:
    """(video, fields, error or None): a corrupt video is reported and skipped."""
    video, folder, opts = args
    try:
        return video, extract_video_flow(video, folder, FlowOptions(**opts))["fields"], None
    except Exception as e:  # noqa: BLE001
        reason = getattr(e, "reason", None) or str(e)
        return video, 0, f"{type(e).__name__}: {reason}"


def extract_flow_manifest(videos: Sequence[str], out_dir: str | os.PathLike, opts: FlowOptions, *,
                          shard: tuple[int, int] = (0, 1), workers: int = 1, progress: bool = True,
                          log=sys.stderr) -> dict:
    """Store the flow of every video of this shard that has no flow folder yet.

    Returns {"done": n, "skipped": n (already there), "failed": [(path, reason)],
    "fields": n, "seconds": s}. Videos sharing a file stem would share a folder:
    :class:`FlowStoreError` naming them, before anything is computed.
    """
    clash = stem_collisions(list(videos))
    if clash:
        shown = "; ".join(f"{a} and {b}" for a, b in clash[:3])
        raise FlowStoreError(f"{len(clash)} pairs of videos share a file name, so they would share a flow "
                             f"folder: {shown}{' ...' if len(clash) > 3 else ''}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flow_function(opts.method)  # fail once, here, when the method is not available
    jobs, skipped = [], 0
    for i in shard_indices(len(videos), shard):
        folder = flow_folder(out_dir, videos[i])
        if folder.is_dir():
            skipped += 1
        else:
            jobs.append((str(videos[i]), str(folder), asdict(opts)))
    stats = {"done": 0, "skipped": skipped, "failed": [], "fields": 0, "seconds": 0.0}
    if not jobs:
        return stats
    t0 = time.perf_counter()
    for video, fields, err in run_jobs(_run_job, jobs, workers=workers, initializer=_init_worker, progress=progress,
                                       log=log, postfix=lambda el: f"{stats['fields'] / el:.1f} fields/s"):
        record_result(stats, video, err, "vidssl flow", log, fields=fields)
    stats["seconds"] = time.perf_counter() - t0
    return stats
