"""Shared pytest fixtures (tiny data, made on the fly; nothing is downloaded).

- ``synth_dir`` (session): a small built-in dataset made once per test session with
  :func:`vidssl.data.synthetic.make_synthetic` (32 videos, 32 x 32 px, 32 frames at
  25 fps, seed 0); returns the folder (``train.csv``, ``test.csv``,
  ``train_appearance.csv``, ``test_appearance.csv``, ``videos/``). Treat it as read-only.
- ``make_video``: a factory ``make_video(path, frames=16, size=32, fps=25) -> Path``
  that writes one H.264 mp4 whose frame ``t`` is a uniform grey of level
  ``frame_level(t, frames)`` (``round(255 * t / (frames - 1))``), so a test can read the
  frame number back from the mean brightness (lossless encoding: within 1 level).
  ``size`` is an int or ``(height, width)`` (even numbers); a relative ``path`` is
  taken inside the test's ``tmp_path``.
- ``frame_level``: the function ``frame_level(t, frames) -> int`` above.

Torch uses 2 threads in tests (CI has 2 cores).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - torch is a dependency
    pass


def _frame_level(t: int, frames: int) -> int:
    return int(round(255 * t / max(frames - 1, 1)))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from vidssl.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("synth")
    make_synthetic(out, videos=32, seed=0, size=32, frames=32, fps=25)
    return out


@pytest.fixture
def frame_level():
    return _frame_level


@pytest.fixture
def make_video(tmp_path):
    from vidssl.data.synthetic import write_video

    def make(path: str | Path = "video.mp4", frames: int = 16, size: int | tuple[int, int] = 32,
             fps: float = 25) -> Path:
        h, w = (size, size) if isinstance(size, int) else size
        levels = np.array([_frame_level(t, frames) for t in range(frames)], np.uint8)
        video = np.broadcast_to(levels[:, None, None, None], (frames, h, w, 3)).copy()
        path = Path(path)
        if not path.is_absolute():
            path = tmp_path / path
        # grey frames are exact in YUV; crf 0 + yuv444p keeps them within one level
        return write_video(path, video, fps=fps, crf=0, pix_fmt="yuv444p")

    return make


def run_and_kill_when(args: list[str], ready, *, poll: float = 0.02) -> None:
    """Run ``python -m vidssl ARGS`` and SIGKILL it as soon as ``ready()`` is true (e.g. the
    first mid-epoch checkpoint exists); fails unless it was killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-m", "vidssl", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        while proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(poll)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
