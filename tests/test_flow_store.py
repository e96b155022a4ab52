"""Stored optical flow (``vidssl flow extract``, ``data.flow_root``): quantisation, the
folder layout, resumable sharded extraction, and the dataset reading it back with the
flow vectors following the crop, the resize and the flip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidssl.cli import main
from vidssl.config import DataConfig
from vidssl.data.flow_store import (FIELD_FILES, FlowOptions, dequantise, extract_flow_manifest, extract_video_flow,
                                    flow_function, probe_flow, quantise, read_flow)
from vidssl.data.manifests import load_manifest, write_manifest
from vidssl.data.synthetic import write_video
from vidssl.data.transforms import ClipDraw, ClipTransform
from vidssl.errors import FlowStoreError, ManifestError, TransformError


def texture_video(path, n=10, h=40, w=48, vx=2, seed=0):
    """A smooth random texture sliding left by ``vx`` px per frame: true flow dx = -vx, dy = 0."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 256, (h, w + n * vx)).astype(np.float32), (0, 0), 2.0)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = np.stack([np.repeat(tex[:, t * vx:t * vx + w, None], 3, 2) for t in range(n)])
    return write_video(path, frames, fps=25, crf=0, pix_fmt="yuv444p")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("flowvids")
    paths = [texture_video(root / f"v{i}.mp4", seed=i, vx=1 + i % 2) for i in range(4)]
    write_manifest(root / "m.csv", [str(p) for p in paths], [0, 1, 0, 1])
    return root


def test_quantise_matches_the_formula_and_inverts_within_half_a_step():
    b = 10.0
    v = np.array([-25.0, -10.0, 0.0, 10.0, 3.3, -7.77], np.float32)
    u = quantise(v, b)
    assert u.tolist() == [0, 0, 128, 255, round((3.3 + 10) * 12.75), round((-7.77 + 10) * 12.75)]
    x = np.random.default_rng(0).uniform(-b, b, 10_000).astype(np.float32)
    err = np.abs(dequantise(quantise(x, b), b) - x)
    assert err.max() <= b / 255 + 1e-5
    assert dequantise(np.array([0, 255], np.uint8), 20.0).tolist() == [-20.0, 20.0]


@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_extracted_fields_follow_the_motion(tmp_path, method):
    video = texture_video(tmp_path / "t.mp4", n=6, vx=2)
    folder = tmp_path / "flow" / "t"
    stats = extract_video_flow(str(video), folder, FlowOptions(method=method))
    assert stats["fields"] == 5
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["flow.json"] + [f.format(k) for f in FIELD_FILES for k in range(1, 6)]
    meta = json.loads((folder / "flow.json").read_text())
    assert (meta["method"], meta["fields"], meta["width"], meta["height"], meta["bound"]) == (method, 5, 48, 40, 10.0)
    info = probe_flow(folder)
    assert (info.num_frames, info.fps, info.width, info.height) == (6, 25.0, 48, 40)
    f = read_flow(folder, [0, 4, 0], 20.0)
    assert f.shape == (3, 40, 48, 2) and f.dtype == np.float32
    assert np.array_equal(f[0], f[2])
    inner = f[:, 8:-8, 8:-8]
    assert abs(float(np.median(inner[..., 0])) + 2.0) < 0.3  # dx = -2 px
    assert abs(float(np.median(inner[..., 1]))) < 0.3
    with pytest.raises(FlowStoreError, match="field 5 requested"):
        read_flow(folder, [5], 10.0)


def test_stored_fields_equal_the_flow_of_the_decoded_frames_up_to_jpeg(tmp_path):
    """Reference: the method run on the decoded grey frames directly, without storage."""
    from vidssl.data.video import iter_frames

    video = texture_video(tmp_path / "t.mp4", n=5, vx=1)
    extract_video_flow(str(video), tmp_path / "t", FlowOptions(method="dis"))
    grey = list(iter_frames(video, gray=True))
    calc = flow_function("dis")
    ref = np.stack([np.clip(calc(a, b), -10, 10) for a, b in zip(grey, grey[1:])])
    got = read_flow(tmp_path / "t", range(4), 10.0)
    assert np.abs(got - ref).mean() < 0.05 and np.abs(got - ref).max() < 0.5


def test_short_side_downscales_and_never_upscales(tmp_path):
    video = texture_video(tmp_path / "t.mp4", n=3)
    extract_video_flow(str(video), tmp_path / "a", FlowOptions(method="dis", short_side=20))
    extract_video_flow(str(video), tmp_path / "b", FlowOptions(method="dis", short_side=256))
    assert (probe_flow(tmp_path / "a").height, probe_flow(tmp_path / "a").width) == (20, 24)
    assert (probe_flow(tmp_path / "b").height, probe_flow(tmp_path / "b").width) == (40, 48)


def test_manifest_extraction_is_sharded_resumable_and_skips_corrupt_videos(tmp_path, videos):
    paths = load_manifest(videos / "m.csv").paths
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    out = tmp_path / "flow"
    stale = out / ".v0.12345.tmp"
    stale.mkdir(parents=True)
    opts = FlowOptions(method="dis")
    s0 = extract_flow_manifest(paths + [str(bad)], out, opts, shard=(0, 2), progress=False)
    s1 = extract_flow_manifest(paths + [str(bad)], out, opts, shard=(1, 2), workers=2, progress=False)
    assert s0["done"] + s1["done"] == 4 and s0["fields"] + s1["fields"] == 36
    assert [p for p, _ in s0["failed"] + s1["failed"]] == [str(bad)]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["v0", "v1", "v2", "v3"]
    again = extract_flow_manifest(paths, out, opts, progress=False)
    assert (again["done"], again["skipped"]) == (0, 4)
    # a temporary folder left by a killed job does not count as done; none of this process is left
    assert (out / "v0" / "flow.json").is_file()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [stale.name]


def test_videos_sharing_a_stem_are_refused_before_any_work(tmp_path, videos):
    a, b = tmp_path / "x" / "v0.mp4", tmp_path / "y" / "v0.mp4"
    for p in (a, b):
        texture_video(p, n=3)
    with pytest.raises(FlowStoreError, match="share a file name"):
        extract_flow_manifest([str(a), str(b)], tmp_path / "flow", FlowOptions(method="dis"), progress=False)
    assert not (tmp_path / "flow").exists() or not any((tmp_path / "flow").iterdir())


def test_tvl1_without_contrib_says_what_to_install(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(FlowStoreError, match="opencv-contrib-python-headless"):
        flow_function("tvl1")
    with pytest.raises(FlowStoreError, match="unknown flow method"):
        FlowOptions(method="farneback")


def _transform(size, **kw):
    cfg = DataConfig(modality="flow", crop_size=size, flow_root="x", **kw)
    return ClipTransform(cfg, train=True)


def test_flip_negates_dx_and_mirrors_both_fields():
    rng = np.random.default_rng(0)
    fields = rng.normal(0, 3, (3, 16, 16, 2)).astype(np.float32)
    t = _transform(16)
    plain = t.apply([fields], ClipDraw(box=(0, 0, 16, 16)))[0]  # [2, T, S, S]
    flipped = t.apply([fields], ClipDraw(box=(0, 0, 16, 16), flip=True))[0]
    assert plain.shape == (2, 3, 16, 16)
    torch.testing.assert_close(flipped[0], -plain[0].flip(-1))
    torch.testing.assert_close(flipped[1], plain[1].flip(-1))
    # reference for the un-resized case: clip to the bound, divide by it, subtract the spatial mean
    ref = np.clip(fields, -10, 10) / 10
    ref = ref - ref.mean(axis=(1, 2), keepdims=True)
    torch.testing.assert_close(plain, torch.from_numpy(ref).permute(3, 0, 1, 2))


def test_resize_scales_the_vectors_by_the_resize_factors():
    # a 4 x 8 crop of a field that is dx = 1, dy = 0.5 everywhere except a 2 x 4 block
    # (dx = 2, dy = 1): after a 4x (y) / 2x (x) resize to 16 px the block-background
    # contrast is (2 - 1) x 2 in dx and (1 - 0.5) x 4 in dy, in output pixels
    f = np.zeros((1, 8, 8, 2), np.float32)
    f[..., 0], f[..., 1] = 1.0, 0.5
    f[:, 2:4, 0:4, 0], f[:, 2:4, 0:4, 1] = 2.0, 1.0
    out = _transform(16).apply([f], ClipDraw(box=(2, 0, 4, 8)))[0][:, 0] * 10  # back to pixels
    dx, dy = out[0], out[1]
    assert abs(float(dx[2, 2] - dx[12, 12]) - 2.0) < 1e-4
    assert abs(float(dy[2, 2] - dy[12, 12]) - 2.0) < 1e-4


def test_frames_and_fields_cannot_be_mixed():
    t = _transform(8)
    with pytest.raises(TransformError, match="mixed"):
        t.apply([np.zeros((2, 8, 8, 2), np.float32), np.zeros((3, 8, 8, 3), np.uint8)], ClipDraw(box=(0, 0, 8, 8)))
    with pytest.raises(TransformError, match="mixed"):
        t.apply([np.zeros((3, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 2), np.float32)], ClipDraw(box=(0, 0, 8, 8)))


@pytest.fixture(scope="module")
def flow_root(tmp_path_factory, videos):
    out = tmp_path_factory.mktemp("flowroot")
    extract_flow_manifest(load_manifest(videos / "m.csv").paths, out, FlowOptions(method="dis"), progress=False)
    return out


def test_dataset_reads_the_fields_of_its_clips(videos, flow_root):
    from vidssl.data.datasets import VideoDataset

    m = load_manifest(videos / "m.csv")
    cfg = DataConfig(modality="flow", flow_root=str(flow_root), num_frames=4, stride=1, views=2, crop_size=32,
                     test_short_side=32, test_clips=3)
    item = VideoDataset(m, cfg, train=True)[(1, 7)]
    (clips,) = item["clips"]
    assert clips.shape == (2, 2, 4, 32, 32)
    assert torch.allclose(clips.mean(dim=(-2, -1)), torch.zeros(()), atol=1e-5)  # mean-subtracted
    test = VideoDataset(m, cfg, train=False)
    assert test.num_views == 3 and test[0]["clips"][0].shape == (3, 2, 4, 32, 32)


def test_a_video_without_flow_folder_is_named(tmp_path, videos, flow_root):
    from vidssl.data.datasets import VideoDataset

    extra = texture_video(tmp_path / "new_one.mp4", n=4)
    m = load_manifest(videos / "m.csv")
    write_manifest(tmp_path / "m2.csv", m.paths + [str(extra)], [0, 1, 0, 1, 0])
    cfg = DataConfig(modality="flow", flow_root=str(flow_root))
    with pytest.raises(ManifestError, match=r"1 of the 5 videos .*new_one\.mp4.*vidssl flow extract"):
        VideoDataset(load_manifest(tmp_path / "m2.csv"), cfg)


def test_folder_without_flow_json_is_read_with_the_configured_bound(tmp_path):
    import cv2

    folder = tmp_path / "other" / "clip"
    folder.mkdir(parents=True)
    for k in (1, 2):
        cv2.imwrite(str(folder / f"flow_x_{k:05d}.jpg"), np.full((8, 8), 255, np.uint8))
        cv2.imwrite(str(folder / f"flow_y_{k:05d}.jpg"), np.full((8, 8), 0, np.uint8))
    info = probe_flow(folder)
    assert (info.num_frames, info.fps, info.width) == (3, 30.0, 8)
    f = read_flow(folder, [0, 1], 20.0)
    assert np.allclose(f[..., 0], 20.0, atol=0.2) and np.allclose(f[..., 1], -20.0, atol=0.2)


def test_cli_extract_then_pretrain_cpc_on_stored_flow(tmp_path, videos, capsys):
    out = tmp_path / "flow"
    assert main(["flow", "extract", str(videos / "m.csv"), "--out", str(out), "--method", "dis", "--quiet"]) == 0
    assert "extracted 4 videos (36 flow fields" in capsys.readouterr().out
    assert main(["flow", "extract", str(videos / "m.csv"), "--out", str(out), "--quiet"]) == 0
    assert "4 already done" in capsys.readouterr().out
    run = tmp_path / "run"
    code = main(["pretrain", "cpc_tiny", f"data.train={videos / 'm.csv'}", "data.modality=flow",
                 f"data.flow_root={out}", "data.views=3", "method.segments=3", "data.num_frames=2", "data.hop=1",
                 "data.stride=1", "model.options.frames=2", "data.crop_size=32", "data.batch_size=4",
                 "data.workers=0", "train.epochs=1", "optim.warmup_epochs=0", f"train.out={tmp_path}", "train.name=run"])
    assert code == 0
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite([r["loss"] for r in rows if "loss" in r]).all()
    capsys.readouterr()
    assert main(["pretrain", "cpc_tiny", f"data.train={videos / 'm.csv'}", f"data.flow_root={out}"]) == 2
    assert "data.modality is 'diff'" in capsys.readouterr().err


def test_a_flow_folder_of_another_video_is_named(tmp_path, videos, flow_root):
    """The stored fields of a 10-frame video under the name of a 30-frame one: refused."""
    import shutil

    from vidssl.data.datasets import VideoDataset

    long_video = texture_video(tmp_path / "v0.mp4", n=30)
    root = tmp_path / "flow"
    shutil.copytree(flow_root, root)  # v0's folder holds 9 fields (10 frames)
    m = load_manifest(videos / "m.csv")
    write_manifest(tmp_path / "m3.csv", [str(long_video)] + m.paths[1:], [0, 1, 0, 1])
    with pytest.raises(ManifestError, match=r"v0\.mp4: 10 frames in its flow folder, 30 in the video"):
        VideoDataset(load_manifest(tmp_path / "m3.csv"), DataConfig(modality="flow", flow_root=str(root)))
    VideoDataset(m, DataConfig(modality="flow", flow_root=str(root)))  # the right videos pass
