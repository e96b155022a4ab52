"""Dataset preparation: re-encode every video of a manifest to the short side, frame rate
and keyframe interval that training needs (the MMAction2 / PySlowFast recipe for Kinetics:
short side 256 or 320, a keyframe every few frames so that a clip's seek lands near it).

``vidssl data prepare MANIFEST --out DIR`` calls :func:`prepare_manifest`: each video is
decoded with PyAV, resized (area filter, even sizes) so that its short side is
``short_side`` (never upscaled), optionally resampled to ``fps`` (nearest frame in time),
and encoded as H.264 (``crf``, ``preset``, GOP ``keyint``) into ``DIR/<relative path>.mp4``
(the path relative to the manifest's common folder). Files are written under a temporary
name and renamed, so a killed job resumes where it stopped (existing outputs are kept);
a video that cannot be decoded is reported and skipped. The new manifest
(``DIR/manifest.csv``: ``path``, ``label`` and the other columns of the source) lists
the prepared videos in the source's order.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from vidssl.data.video import iter_frames, probe
from vidssl.errors import ManifestError
from vidssl.fileio import atomic_write
from vidssl.shards import record_result, run_jobs, shard_indices


@dataclass(frozen=True)
class PrepareOptions:
    short_side: Optional[int] = 256  # None: keep the size
    fps: Optional[float] = None  # None: keep the frame rate
    keyint: int = 16  # frames between keyframes (GOP size)
    crf: int = 18
    preset: str = "veryfast"
    backend: str = "pyav"

    def __post_init__(self):
        if self.short_side is not None and self.short_side < 16:
            raise ManifestError(f"--short-side must be >= 16, got {self.short_side}")
        if self.fps is not None and not self.fps > 0:
            raise ManifestError(f"--fps must be > 0, got {self.fps}")
        if self.keyint < 1:
            raise ManifestError(f"--keyint must be >= 1, got {self.keyint}")


def output_path(out_dir: str | os.PathLike, video: str, root: str) -> Path:
    """``out_dir / relative path of video under root``, with the extension .mp4."""
    rel = os.path.relpath(video, root)
    if rel.startswith(".."):
        rel = Path(video).name
    return (Path(out_dir) / rel).with_suffix(".mp4")


def target_size(width: int, height: int, short_side: Optional[int]) -> tuple[int, int]:
    """(w, h) with the short side ``short_side`` (never upscaled), both even (H.264 yuv420p)."""
    s = 1.0 if short_side is None or min(width, height) <= short_side else short_side / min(width, height)
    def even(v: float) -> int:  # nearest even number, halves rounded up
        return max(2, 2 * math.floor(v / 2 + 0.5))

    return even(width * s), even(height * s)


def prepare_video(video: str, out: str | os.PathLike, opts: PrepareOptions) -> dict:
    """Re-encode one video; {"frames": n written, "seconds": s}."""
    import av
    import cv2

    info = probe(video, opts.backend)
    w, h = target_size(info.width, info.height, opts.short_side)
    fps = opts.fps or info.fps
    step = info.fps / fps  # source frames per output frame
    t0 = time.perf_counter()
    count = {"n": 0}

    def encode(f) -> None:
        with av.open(f, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(opts.crf), "preset": opts.preset, "g": str(opts.keyint),
                              "keyint_min": str(opts.keyint), "sc_threshold": "0"}
            k = 0  # next output frame: source frame floor(k * step + 0.5), nearest in time
            for i, frame in enumerate(iter_frames(video, opts.backend)):
                while math.floor(k * step + 0.5) == i:
                    img = frame if (frame.shape[1], frame.shape[0]) == (w, h) else \
                        cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img),
                                                                           format="rgb24")):
                        container.mux(packet)
                    count["n"] += 1
                    k += 1
            for packet in stream.encode():
                container.mux(packet)

    atomic_write(out, encode, fsync=False)
    if count["n"] == 0:
        Path(out).unlink(missing_ok=True)
        raise ManifestError(f"{video}: no frames to write")
    return {"frames": count["n"], "seconds": time.perf_counter() - t0}


def _run_job(args) -> tuple[str, int, Optional[str]]:
    video, out, opts = args
    try:
        return video, prepare_video(video, out, PrepareOptions(**opts))["frames"], None
    except Exception as e:  # noqa: BLE001 - a corrupt video is reported and skipped
        return video, 0, f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"


def prepare_manifest(manifest, out_dir: str | os.PathLike, opts: PrepareOptions, *, shard: tuple[int, int] = (0, 1),
                     workers: int = 1, progress: bool = True, log=sys.stderr) -> dict:
    """Prepare the videos of this shard that have no output yet, then write the manifest of
    every prepared video (of all shards) that exists. Returns {"done", "skipped", "failed",
    "frames", "seconds", "manifest"}."""
    from vidssl.data.manifests import write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = os.path.commonpath([os.path.dirname(p) for p in manifest.paths]) if len(manifest) else "."
    outs = [output_path(out_dir, p, root) for p in manifest.paths]
    if len(set(outs)) != len(outs):
        raise ManifestError(f"{manifest.source}: two videos would be written to the same file")
    jobs, skipped = [], 0
    for i in shard_indices(len(manifest), shard):
        if outs[i].is_file():
            skipped += 1
        else:
            jobs.append((manifest.paths[i], str(outs[i]), asdict(opts)))
    stats = {"done": 0, "skipped": skipped, "failed": [], "frames": 0, "seconds": 0.0}
    t0 = time.perf_counter()
    for video, frames, err in run_jobs(_run_job, jobs, workers=workers, progress=progress and bool(jobs), log=log,
                                       postfix=lambda el: f"{stats['frames'] / el:.0f} frames/s"):
        record_result(stats, video, err, "vidssl data prepare", log, frames=frames)
    stats["seconds"] = time.perf_counter() - t0
    keep = [i for i, o in enumerate(outs) if o.is_file()]
    cols = {k: [v[i] for i in keep] for k, v in manifest.columns.items()}
    labels = [manifest.raw_labels()[i] for i in keep] if any(y >= 0 for y in manifest.labels) else None
    stats["manifest"] = str(write_manifest(out_dir / "manifest.csv", [str(outs[i]) for i in keep], labels, **cols))
    stats["listed"] = len(keep)
    return stats
