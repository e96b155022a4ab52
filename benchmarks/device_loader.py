"""The data side of ``device_check.py``: videos at a chosen size, and the loader's rate.

``write_videos`` renders moving-texture videos (a noise texture panning over time, about
as hard to compress and decode as camera footage) either as H.264 files through PyAV
(``backend="pyav"``) or as folders of JPEG frames through OpenCV (``backend="frames"``,
what a machine without PyAV can still decode), in parallel over the cores, and writes
their manifest. ``loader_rate`` times ``vidssl.data.datasets.build_loader`` (decode +
sampling + augmentation + collate) on them, after the first batch.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch


def pyav_version() -> str | None:
    try:
        import av
    except ImportError:
        return None
    return av.__version__


def _frames(index: int, frames: int, width: int, height: int) -> np.ndarray:
    """uint8 [T, H, W, 3]: a smoothed noise texture panning 3 px per frame, a per-video tint."""
    rng = np.random.default_rng(index)
    tex = rng.integers(0, 256, (height // 4 + 1, (width + 3 * frames) // 4 + 1, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex, 4, 0), 4, 1)[:height]
    tint = rng.integers(0, 64, 3, dtype=np.uint8)
    return np.stack([tex[:, 3 * t:3 * t + width] // 2 + tint for t in range(frames)])


def _write_one(job) -> str:
    path, index, frames, width, height, fps, backend = job
    video = _frames(index, frames, width, height)
    if backend == "pyav":
        from vidssl.data.synthetic import write_video

        write_video(Path(path), video, fps=fps, preset="veryfast")
        return path
    import cv2

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(video):
        cv2.imwrite(str(folder / f"{t + 1:05d}.jpg"), frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    (folder / "fps.txt").write_text(f"{fps}\n")
    return path


def write_videos(folder: Path, *, videos: int, frames: int, width: int, height: int, fps: float = 30.0,
                 backend: str = "pyav", workers: int | None = None) -> tuple[Path, float]:
    """``videos`` videos in ``folder`` and their manifest ``folder/train.csv``; returns
    (manifest, seconds taken)."""
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".mp4" if backend == "pyav" else ""
    jobs = [(str(folder / f"video{i:04d}{ext}"), i, frames, width, height, fps, backend) for i in range(videos)]
    workers = max(1, min(workers or os.cpu_count() or 1, videos))
    if workers == 1:
        paths = [_write_one(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            paths = list(pool.map(_write_one, jobs))
    manifest = folder / "train.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},{i % 4}\n" for i, p in enumerate(paths)))
    return manifest, time.perf_counter() - start


class Repeated(torch.utils.data.Dataset):
    """The videos of ``dataset`` over and over (one loader start serves every timed batch)."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length
        self.manifest = getattr(dataset, "manifest", None)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, seed = key
        return self.dataset[(index % len(self.dataset), seed)]


def dataset_for(manifest: Path, data_cfg, backend: str):
    """The training ``VideoDataset`` of ``manifest`` with a recipe's data section."""
    import dataclasses

    from vidssl.data.datasets import VideoDataset
    from vidssl.data.manifests import load_manifest

    cfg = dataclasses.replace(data_cfg, backend=backend, train=str(manifest))
    return VideoDataset(load_manifest(str(manifest)), cfg, train=True)


def loader_rate(dataset, batch: int, workers: int, seconds: float, max_batches: int = 200) -> dict:
    """Clips/s through ``build_loader`` with ``workers`` workers, timed after the first
    batch (the workers' start) for about ``seconds``."""
    from vidssl.data.datasets import build_loader

    loader = build_loader(Repeated(dataset, batch * (max_batches + 1)), batch, shuffle=True, seed=0, workers=workers)
    clips = batches = 0
    t0 = time.perf_counter()
    start = first = None
    for b in loader:
        if start is None:
            start = time.perf_counter()
            first = start - t0
            continue
        clips += b["clips"][0].shape[0] * b["clips"][0].shape[1]
        batches += 1
        if time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    return {"clips_per_s": clips / max(elapsed, 1e-9), "videos_per_s": batches * batch / max(elapsed, 1e-9),
            "batches": batches, "seconds": elapsed, "first_batch_s": first, "workers": workers,
            "batch_videos": batch}
