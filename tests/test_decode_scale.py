"""Scaling inside the decoder (``data.decode_scale``) and the decoding-thread setting
(``data.decode_threads``), against native decoding on videos made on the fly."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from vidssl.config import AugmentConfig, ConfigError, DataConfig, load_config
from vidssl.data.datasets import VideoDataset, decode_short_side
from vidssl.data.manifests import load_manifest, write_manifest
from vidssl.data.synthetic import write_video
from vidssl.data.video import read_frames, scaled_size


def _textured_video(path, frames=24, h=72, w=96):
    """Smooth moving texture: resampling filters agree on it to a grey level or two."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    video = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        for c in range(3):
            v = 128 + 90 * np.sin((xx + 2 * t) / (6 + 2 * c)) * np.cos((yy - t) / (9 + c))
            video[t, ..., c] = np.clip(v, 0, 255).astype(np.uint8)
    return write_video(path, video, fps=25, crf=0, pix_fmt="yuv444p")


@pytest.mark.parametrize("w,h,s,expect", [
    (96, 72, 48, (64, 48)), (72, 96, 48, (48, 64)), (96, 72, 72, (96, 72)), (96, 72, 200, (96, 72)),
    (97, 61, 30, (48, 30)), (50, 50, None, (50, 50)), (1280, 720, 256, (455, 256)),
])
def test_scaled_size(w, h, s, expect):
    assert scaled_size(w, h, s) == expect


def test_scaled_size_rejects_zero():
    with pytest.raises(ValueError):
        scaled_size(64, 48, 0)


@pytest.mark.parametrize("short", [24, 40, 60])
def test_decoder_scaling_matches_area_resize(tmp_path, short):
    path = _textured_video(tmp_path / "v.mp4")
    idx = [0, 3, 7, 20]
    native = read_frames(path, idx)
    scaled = read_frames(path, idx, short_side=short)
    w, h = scaled_size(96, 72, short)
    assert scaled.shape == (4, h, w, 3) and scaled.dtype == np.uint8
    ref = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in native])
    diff = np.abs(scaled.astype(np.int16) - ref)
    assert diff.mean() < 2.0, diff.mean()
    assert np.percentile(diff, 99) <= 8
    # the frames differ from one another: the scaled frame numbers are the requested ones
    assert np.abs(scaled[0].astype(int) - scaled[-1]).mean() > 5


def test_no_upscaling_and_repeats(tmp_path):
    path = _textured_video(tmp_path / "v.mp4")
    a = read_frames(path, [5, 2, 5], short_side=500)
    assert np.array_equal(a, read_frames(path, [5, 2, 5]))
    assert np.array_equal(a[0], a[2])


def test_frames_backend_scales_with_opencv(tmp_path):
    path = _textured_video(tmp_path / "v.mp4")
    native = read_frames(path, range(6))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(native):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    got = read_frames(folder, [1, 4], backend="frames", short_side=36)
    ref = np.stack([cv2.resize(native[i], (48, 36), interpolation=cv2.INTER_AREA) for i in (1, 4)])
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_gives_identical_frames(tmp_path, threads):
    path = _textured_video(tmp_path / "v.mp4")
    idx = [1, 9, 10, 23]
    assert np.array_equal(read_frames(path, idx, threads=threads), read_frames(path, idx))


def test_decode_short_side_per_crop():
    cfg = DataConfig(crop_size=56, test_short_side=64, augment=AugmentConfig(short_side=(64, 80)))
    assert decode_short_side(cfg, train=True) == 80
    assert decode_short_side(cfg, train=False) == 64
    assert decode_short_side(dataclasses.replace(cfg, augment=AugmentConfig(crop="center")), True) == 56
    assert decode_short_side(dataclasses.replace(cfg, augment=AugmentConfig(crop="resized")), True) is None
    # the short side never drops below the crop
    small = dataclasses.replace(cfg, crop_size=100)
    assert decode_short_side(small, True) == 100 and decode_short_side(small, False) == 100


@pytest.mark.parametrize("train", [False, True])
def test_dataset_clips_close_to_native(tmp_path, train):
    path = _textured_video(tmp_path / "v.mp4", h=96, w=128)
    m = load_manifest(write_manifest(tmp_path / "m.csv", [str(path)]))
    cfg = DataConfig(num_frames=4, stride=2, views=2, crop_size=32, test_short_side=40, test_clips=2,
                     workers=0, augment=AugmentConfig(short_side=(40, 48), color_p=0.0, grayscale_p=0.0,
                                                      blur_p=0.0))
    a = VideoDataset(m, cfg, train=train)
    b = VideoDataset(m, dataclasses.replace(cfg, decode_scale=True), train=train)
    assert b.decode_short_side == (48 if train else 40) and a.decode_short_side is None
    ca, cb = a[(0, 3)]["clips"][0], b[(0, 3)]["clips"][0]
    assert ca.shape == cb.shape
    grey_levels = ((ca - cb).abs() * 0.225 * 255).mean().item()
    assert grey_levels < 6.0, grey_levels


def test_decode_threads_validated():
    with pytest.raises(ConfigError, match="data.decode_threads"):
        load_config("supervised_tiny", ["data.decode_threads=0"])
    assert load_config("supervised_tiny", ["data.decode_threads=1", "data.decode_scale=true"]).data.decode_threads == 1
