"""Static-image videos (VIE Sec. 4): an image manifest read as videos by tiling each image
over time (backend ``image``, format ``images``), so multi-frame models can be probed on images."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vidssl.cli import main
from vidssl.config import load_config
from vidssl.data.datasets import VideoDataset
from vidssl.data.manifests import load_manifest
from vidssl.data.video import STATIC_FRAMES, decode_all, iter_frames, probe, read_frames
from vidssl.errors import ManifestError, VideoDecodeError


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for cls, level in (("dark", 40), ("light", 210)):
        (root / cls).mkdir()
        for i in range(4):
            img = np.clip(rng.normal(level, 10, (30, 40, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / cls / f"{i}.png"), img[..., ::-1])  # RGB -> BGR on disk
    return root


def test_an_image_is_a_static_video(images):
    path = str(images / "dark" / "0.png")
    info = probe(path, "image")
    assert (info.num_frames, info.width, info.height, info.fps) == (STATIC_FRAMES, 40, 30, 30.0)
    frames = read_frames(path, [0, 5, 63, 5], "image")
    assert frames.shape == (4, 30, 40, 3) and all(np.array_equal(f, frames[0]) for f in frames)
    assert decode_all(path, "image") == STATIC_FRAMES
    assert sum(1 for _ in iter_frames(path, "image", gray=True)) == STATIC_FRAMES
    with pytest.raises(VideoDecodeError, match="static image video has 64 frames"):
        read_frames(path, [64], "image")


def test_bad_images_are_named(tmp_path, images):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(VideoDecodeError, match="broken.jpg.*not a readable image"):
        probe(str(bad), "image")
    with pytest.raises(VideoDecodeError, match="is a folder"):
        probe(str(images), "image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no images"):
        load_manifest(tmp_path / "empty", format="images")


def test_images_manifest_and_dataset_give_repeated_frames(images):
    m = load_manifest(images, format="images")
    assert len(m) == 8 and m.classes == ["dark", "light"] and m.labels == [0] * 4 + [1] * 4
    cfg = load_config("supervised_tiny", ["data.backend=image", "data.format=images", "data.modality=rgb",
                                          "data.crop_size=24", "data.test_short_side=28", "data.test_clips=2"])
    (clips,) = VideoDataset(m, cfg.data, train=False)[0]["clips"]
    assert clips.shape == (2, 3, cfg.data.num_frames, 24, 24)
    assert bool((clips == clips[:, :, :1]).all())  # every frame of every view is the image


def test_linear_probe_of_a_multi_frame_model_on_images(images, tmp_path):
    out = tmp_path / "probe.json"
    code = main(["eval", "linear", "--checkpoint", "random", "--config", "supervised_tiny", "--train", str(images),
                 "--test", str(images), "--json", str(out), "--quiet", "data.backend=image", "data.format=images",
                 "data.modality=rgb", "model.width=4", "data.num_frames=4", "data.crop_size=24",
                 "data.test_short_side=28", "data.test_clips=1", "eval.linear_epochs=20"])
    assert code == 0
    res = json.loads(out.read_text())
    assert res["num_train"] == 8 and res["top1"] == 1.0  # dark vs light images: separable even by random features
