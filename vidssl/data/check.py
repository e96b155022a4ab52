"""Find the videos of a manifest that do not decode (``vidssl check-videos MANIFEST``).

Every file is decoded completely, so corruption anywhere in a file is found before
a long run meets it; a file that decodes fewer frames than its container states
(a truncated file) is reported too, because clips sampled near its end would fail.
"""
from __future__ import annotations

from tqdm import tqdm

from vidssl.data.manifests import Manifest
from vidssl.data.video import decode_all, probe
from vidssl.errors import VideoDecodeError


def check_video(path: str, backend: str = "pyav") -> str | None:
    """None when ``path`` decodes completely, else the reason it does not."""
    try:
        stated = probe(path, backend).num_frames
        decoded = decode_all(path, backend)
    except VideoDecodeError as e:
        return e.reason
    if decoded < stated:
        return f"truncated: the container states {stated} frames but only {decoded} decode"
    return None


def check_videos(manifest: Manifest, backend: str = "pyav", progress: bool = True) -> list[tuple[str, str]]:
    """Decode every video of ``manifest``; ``[(path, reason)]`` of those that fail, in manifest order."""
    bad = []
    bar = tqdm(manifest.paths, desc="checking videos", unit="video", disable=not progress)
    for path in bar:
        reason = check_video(path, backend)
        if reason is not None:
            bad.append((path, reason))
            bar.set_postfix(bad=len(bad))
    return bad
