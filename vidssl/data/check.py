"""Find the videos of a manifest that do not decode (``vidssl check-videos MANIFEST``).

Every file is decoded completely, so corruption anywhere in a file is found before
a long run meets it; a file that decodes fewer frames than its container states
(a truncated file) is reported too, because clips sampled near its end would fail.
With ``workers > 1`` the videos are decoded in that many processes
(:func:`vidssl.shards.run_jobs`); the report is the same, in manifest order.
"""
from __future__ import annotations

from vidssl.data.manifests import Manifest
from vidssl.data.video import decode_all, probe
from vidssl.errors import VideoDecodeError
from vidssl.shards import run_jobs


def check_video(path: str, backend: str = "pyav", threads: int | None = None) -> str | None:
    """None when ``path`` decodes completely, else the reason it does not (``threads``:
    FFmpeg's decoding threads, None = its own count)."""
    try:
        stated = probe(path, backend).num_frames
        decoded = decode_all(path, backend, threads=threads)
    except VideoDecodeError as e:
        return e.reason
    if decoded < stated:
        return f"truncated: the container states {stated} frames but only {decoded} decode"
    return None


def _check_job(job: tuple[int, str, str, int | None]) -> tuple[int, str, str | None]:
    """(index, path, reason or None) of one video; module-level, so that worker processes can run it."""
    i, path, backend, threads = job
    return i, path, check_video(path, backend, threads)


def check_videos(manifest: Manifest, backend: str = "pyav", progress: bool = True,
                 workers: int = 1) -> list[tuple[str, str]]:
    """Decode every video of ``manifest`` (in ``workers`` processes when > 1); ``[(path, reason)]``
    of those that fail, in manifest order whatever the number of workers."""
    bad: dict[int, tuple[str, str]] = {}
    workers = min(workers, max(len(manifest), 1))
    threads = 1 if workers > 1 else None  # the processes already decode in parallel: one FFmpeg thread each
    jobs = [(i, path, backend, threads) for i, path in enumerate(manifest.paths)]
    for i, path, reason in run_jobs(_check_job, jobs, workers=workers, progress=progress,
                                    postfix=lambda seconds: f"bad={len(bad)}"):
        if reason is not None:
            bad[i] = (path, reason)
    return [bad[i] for i in sorted(bad)]
