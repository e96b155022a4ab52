"""Per-video IDT driver, the descriptor file format, sharding and worker processes.

File format (one per video, never text): ``<out>/<stem>-<hash8>.npz`` written with
``np.savez_compressed`` to a temporary name then renamed (atomic), holding
``rows`` float32 [N, 436] (columns: see :mod:`vidssl.idt.trajectories`), ``path`` (the
video path as given by the manifest), ``frames``, ``width``, ``height`` (of the processed
frames), ``scale`` (processed / original size) and ``options`` (IDTOptions as JSON).
A video whose file exists is skipped, so a killed job resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from vidssl.fileio import atomic_write
from vidssl.shards import parse_shard, record_result, run_jobs, shard_indices  # noqa: F401 - parse_shard: part of this module's API
from vidssl.idt.options import IDTOptions
from vidssl.idt.trajectories import extract_frames

FILE_FORMAT = "vidssl-idt/1"


def descriptor_file(out_dir: str | os.PathLike, video: str | os.PathLike) -> Path:
    """Stable output name of a video: its stem plus 8 hex digits of the path's hash (two
    videos with the same name in different folders do not collide)."""
    video = str(video)
    digest = hashlib.sha1(video.encode("utf-8")).hexdigest()[:8]
    return Path(out_dir) / f"{Path(video).stem}-{digest}.npz"


def read_grey_frames(path: str | os.PathLike, max_short_side: Optional[int] = None) -> Iterator[np.ndarray]:
    """Decode every frame in order with PyAV as uint8 grey [H, W] (BGR -> grey like the
    original's OpenCV capture), resized (area) so the short side is <= max_short_side."""
    import av
    import cv2

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # one core per worker process
        for frame in container.decode(stream):
            grey = cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY)
            if max_short_side is not None and min(grey.shape) > max_short_side:
                s = max_short_side / min(grey.shape)
                size = (max(1, int(round(grey.shape[1] * s))), max(1, int(round(grey.shape[0] * s))))
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            yield grey


def _original_size(path: str) -> tuple[int, int]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.width, s.codec_context.height


def extract_video(path: str | os.PathLike, opts: IDTOptions, boxes_file: Optional[str] = None,
                  on_frame: Optional[Callable[[int], None]] = None) -> dict:
    """IDT of one video file -> {"rows": float32 [N, 436], "frames", "width", "height", "scale"}."""
    from vidssl.idt.camera import load_boxes

    boxes = load_boxes(boxes_file) if boxes_file else None
    counter = {"n": 0, "shape": None}

    def frames():
        for g in read_grey_frames(path, opts.max_short_side):
            counter["n"] += 1
            counter["shape"] = g.shape
            yield g

    box_scale = 1.0
    if boxes is not None and opts.max_short_side is not None:
        w0, h0 = _original_size(str(path))
        box_scale = min(1.0, opts.max_short_side / min(w0, h0))
    rows = extract_frames(frames(), opts, boxes=boxes, box_scale=box_scale, on_frame=on_frame)
    if counter["n"] == 0:
        raise ValueError(f"{path}: no frame could be decoded")
    h, w = counter["shape"]
    return {"rows": rows, "frames": counter["n"], "width": w, "height": h, "scale": box_scale}


def save_descriptors(file: str | os.PathLike, video: str, result: dict, opts: IDTOptions) -> None:
    """Atomic write of one video's descriptors (temporary file + rename)."""
    atomic_write(file, lambda f: np.savez_compressed(
        f, rows=result["rows"].astype(np.float32), path=np.asarray(str(video)),
        frames=np.asarray(result["frames"]), width=np.asarray(result["width"]),
        height=np.asarray(result["height"]), scale=np.asarray(result.get("scale", 1.0)),
        format=np.asarray(FILE_FORMAT), options=np.asarray(json.dumps(opts.to_dict()))))


def load_descriptors(file: str | os.PathLike) -> np.ndarray:
    """rows float32 [N, 436] of a descriptor file."""
    with np.load(file, allow_pickle=False) as z:
        return z["rows"]


# ----------------------------------------------------------------------------------------
@dataclass
class _Job:
    index: int
    video: str
    file: str
    boxes: Optional[str]


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one OpenCV thread per worker process
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _run_job(job: _Job, opts_dict: dict) -> tuple[int, str, int, int, float, Optional[str]]:
    """(index, video, trajectories, frames, seconds, error or None) for one video."""
    opts = IDTOptions.from_dict(opts_dict)
    t = time.perf_counter()
    try:
        result = extract_video(job.video, opts, job.boxes)
        save_descriptors(job.file, job.video, result, opts)
        return job.index, job.video, len(result["rows"]), result["frames"], time.perf_counter() - t, None
    except Exception as e:  # noqa: BLE001 - a corrupt video is reported and skipped
        return job.index, job.video, 0, 0, time.perf_counter() - t, f"{type(e).__name__}: {e}"


def boxes_for(video: str, boxes: Optional[str]) -> Optional[str]:
    """Box file of a video: ``boxes`` itself when it is a file, else ``<boxes>/<stem>.txt``
    (or ``.bb``) when that exists; None otherwise."""
    if not boxes:
        return None
    p = Path(boxes)
    if p.is_file():
        return str(p)
    for ext in (".txt", ".bb", ".boxes"):
        cand = p / (Path(video).stem + ext)
        if cand.is_file():
            return str(cand)
    return None


def extract_manifest(videos: Sequence[str], out_dir: str | os.PathLike, opts: IDTOptions, *,
                     shard: tuple[int, int] = (0, 1), workers: int = 1, boxes: Optional[str] = None,
                     progress: bool = True, log=sys.stderr) -> dict:
    """Extract every video of this shard that has no descriptor file yet.

    Returns {"done": n, "skipped": n (already there), "failed": [(path, reason)],
    "frames": n, "trajectories": n, "seconds": s}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, skipped = [], 0
    for i in shard_indices(len(videos), shard):
        f = descriptor_file(out_dir, videos[i])
        if f.exists():
            skipped += 1
            continue
        jobs.append(_Job(i, str(videos[i]), str(f), boxes_for(str(videos[i]), boxes)))
    stats = {"done": 0, "skipped": skipped, "failed": [], "frames": 0, "trajectories": 0, "seconds": 0.0}
    if not jobs:
        return stats
    t0 = time.perf_counter()

    def postfix(el: float) -> str:
        return f"{(stats['done'] + len(stats['failed'])) / el:.2f} videos/s, {stats['frames'] / el:.1f} frames/s"

    opts_dict = opts.to_dict()
    for _, video, ntraj, nframes, _, err in run_jobs(_star, [(j, opts_dict) for j in jobs], workers=workers,
                                                     initializer=_init_worker, progress=progress, log=log,
                                                     postfix=postfix):
        record_result(stats, video, err, "vidssl idt", log, frames=nframes, trajectories=ntraj)
    stats["seconds"] = time.perf_counter() - t0
    return stats


def _star(args):
    return _run_job(*args)
