"""VideoDataset, EpochSampler, build_loader, collate and check_videos.

Most tests run the dataset with small stand-ins for the sampling and transform
modules (identity transform, simple random clip starts), so that the frames of
every clip can be checked exactly; the last tests use the real modules.
"""
from __future__ import annotations

import logging
import sys
import types

import av
import numpy as np
import pytest
import torch

from vidssl.config import DataConfig
from vidssl.data import datasets
from vidssl.data.check import check_videos
from vidssl.data.datasets import EpochSampler, VideoDataset, build_loader, collate, sample_seed
from vidssl.data.manifests import Manifest
from vidssl.errors import NoDecodableVideoError

NF, HW = 20, 16  # frames per test video, frame size


def write_marked_video(path, video_id: int, t: int = NF) -> None:
    """Lossless video whose frame i has every pixel = 10 * video_id + i (so clips can be read back)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width = s.height = HW
        s.pix_fmt = "bgr0"
        for i in range(t):
            frame = np.full((HW, HW, 3), 10 * video_id + i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


# ----------------------------------------------------------------------------- stand-ins


def fake_train_clip_indices(rng, num_frames, fps, cfg):
    span = (cfg.num_frames - 1) * cfg.stride + 1
    out = []
    for _ in range(cfg.views):
        start = int(rng.integers(0, max(1, num_frames - span + 1)))
        idx = np.minimum(start + np.arange(cfg.num_frames) * cfg.stride, num_frames - 1)
        out.append([idx[::2], idx] if cfg.sampler == "two_rate" else [idx])
    return out


def fake_test_clip_indices(num_frames, fps, cfg, num_clips):
    span = (cfg.num_frames - 1) * cfg.stride + 1
    starts = np.linspace(0, max(0, num_frames - span), num_clips).round().astype(int)
    out = []
    for s in starts:
        idx = s + np.arange(cfg.num_frames) * cfg.stride
        out.append([idx[::2], idx] if cfg.sampler == "two_rate" else [idx])
    return out


class FakeClipTransform:
    """Frames as float [C, T, H, W] plus 1000 x (one draw per call) at training, or the crop number at test."""

    def __init__(self, cfg, train):
        self.cfg, self.train = cfg, train

    def __call__(self, pathways, rng):
        def conv(p, offset):
            return torch.from_numpy(p).permute(3, 0, 1, 2).float() + 1000 * offset

        if self.train:
            draw = int(rng.integers(1, 50))
            return [conv(p, draw) for p in pathways]
        return [[conv(p, k) for p in pathways] for k in range(self.cfg.test_crops)]


@pytest.fixture
def fakes(monkeypatch):
    sampling = types.ModuleType("vidssl.data.sampling")
    sampling.train_clip_indices = fake_train_clip_indices
    sampling.test_clip_indices = fake_test_clip_indices
    transforms = types.ModuleType("vidssl.data.transforms")
    transforms.ClipTransform = FakeClipTransform
    monkeypatch.setitem(sys.modules, "vidssl.data.sampling", sampling)
    monkeypatch.setitem(sys.modules, "vidssl.data.transforms", transforms)
    import vidssl.data as pkg

    monkeypatch.setattr(pkg, "sampling", sampling, raising=False)
    monkeypatch.setattr(pkg, "transforms", transforms, raising=False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    paths = []
    for v in range(5):
        p = d / f"v{v}.mkv"
        write_marked_video(p, v)
        paths.append(str(p))
    bad = d / "bad.mp4"
    bad.write_bytes(b"")
    text = d / "text.mp4"
    text.write_text("not a video\n" * 10)
    return paths, str(bad), str(text)


def cfg(**kw) -> DataConfig:
    base = dict(num_frames=4, stride=2, views=3, crop_size=HW, test_clips=3, test_crops=1, workers=0)
    base.update(kw)
    return DataConfig(**base)


def frame_numbers(clip: torch.Tensor, video_id: int) -> np.ndarray:
    """[C, T, H, W] made by the fake transform -> (draw, native frame numbers [T])."""
    v = clip[0, :, 0, 0].numpy().astype(int)
    return v // 1000, v % 1000 - 10 * video_id


# ----------------------------------------------------------------------------- VideoDataset


def test_train_item_frames_views_and_one_decode(fakes, videos, monkeypatch):
    paths, _, _ = videos
    m = Manifest(paths, [7, 8, 9, 10, 11], source="t")
    c = cfg()
    ds = VideoDataset(m, c, train=True)
    calls = []
    orig = datasets.read_frames
    monkeypatch.setattr(datasets, "read_frames", lambda *a, **k: calls.append(a[0]) or orig(*a, **k))
    item = ds[(2, 1234)]
    assert len(calls) == 1  # every view from one decode call
    assert item["index"] == 2 and item["label"] == 9 and item["bad_paths"] == []
    (clips,) = item["clips"]  # one pathway
    assert clips.shape == (3, 3, 4, HW, HW) and clips.dtype == torch.float32
    # the same draws as the sampler makes from default_rng([seed, index])
    rng = np.random.default_rng([1234, 2])
    plan = fake_train_clip_indices(rng, NF, 25.0, c)
    for v in range(3):
        draw, frames = frame_numbers(clips[v], 2)
        np.testing.assert_array_equal(frames, plan[v][0])
        assert len(set(draw)) == 1  # one draw per clip
        assert draw[0] == int(rng.integers(1, 50))  # ... taken in view order after the sampling
    assert ds.num_views == 3


def test_items_are_reproducible_from_their_key(fakes, videos):
    paths, _, _ = videos
    ds = VideoDataset(Manifest(paths, [0] * 5, source="t"), cfg(), train=True)
    a, b = ds[(1, 99)], ds[(1, 99)]
    assert torch.equal(a["clips"][0], b["clips"][0])
    others = [ds[(1, s)]["clips"][0] for s in range(100, 104)]
    assert any(not torch.equal(a["clips"][0], o) for o in others)
    assert torch.equal(ds[1]["clips"][0], ds[(1, 0)]["clips"][0])  # a bare index means seed 0
    with pytest.raises(IndexError):
        ds[(5, 0)]


def test_test_items_are_clip_major(fakes, videos):
    paths, _, _ = videos
    c = cfg(test_clips=3, test_crops=3)
    ds = VideoDataset(Manifest(paths, [0] * 5, source="t"), c, train=False)
    assert ds.num_views == 9
    (clips,) = ds[(4, 0)]["clips"]
    assert clips.shape == (9, 3, 4, HW, HW)
    plan = fake_test_clip_indices(NF, 25.0, c, 3)
    for v in range(9):
        crop, frames = frame_numbers(clips[v], 4)
        assert (crop == v % 3).all()  # clip-major: crops vary fastest
        np.testing.assert_array_equal(frames, plan[v // 3][0])


def test_two_rate_items_and_collate(fakes, videos):
    paths, _, _ = videos
    ds = VideoDataset(Manifest(paths, [0, 1, 2, 3, 4], source="t"), cfg(sampler="two_rate", views=2), train=True)
    item = ds[(0, 5)]
    slow, fast = item["clips"]
    assert slow.shape == (2, 3, 2, HW, HW) and fast.shape == (2, 3, 4, HW, HW)
    batch = collate([ds[(i, 5)] for i in (3, 1, 4)])
    assert isinstance(batch["clips"], tuple) and batch["clips"][0].shape == (3, 2, 3, 2, HW, HW)
    assert batch["clips"][1].shape == (3, 2, 3, 4, HW, HW)
    assert batch["index"].tolist() == [3, 1, 4] and batch["label"].dtype == torch.long


def test_bad_videos_are_replaced_logged_once_and_reported(fakes, videos, caplog):
    paths, bad, text = videos
    m = Manifest([paths[0], bad, text, paths[3]], [0, 1, 2, 3], source="t")
    ds = VideoDataset(m, cfg(), train=True)
    datasets._WARNED.clear()
    with caplog.at_level(logging.WARNING, logger="vidssl.data"):
        item = ds[(1, 7)]
        again = VideoDataset(m, cfg(), train=True)[(2, 7)]  # a fresh dataset: decodes again, logs nothing new
    assert item["bad_paths"] == [bad, text] and item["index"] == 1 and item["label"] == 3
    _, frames = frame_numbers(item["clips"][0][0], 3)
    assert frames.min() >= 0 and frames.max() < NF  # frames of video 3
    assert again["bad_paths"] == [text] and again["label"] == 3
    warned = [r for r in caplog.records if r.name == "vidssl.data"]
    assert len(warned) == 2
    assert bad in warned[0].getMessage() and "empty file" in warned[0].getMessage()
    assert text in warned[1].getMessage()
    # the replacement is deterministic and wraps around the end of the manifest
    m2 = Manifest([paths[2], bad], [5, 6], source="t")
    wrapped = VideoDataset(m2, cfg(), train=True)[(1, 3)]
    assert wrapped["label"] == 5 and wrapped["bad_paths"] == [bad]
    assert torch.equal(wrapped["clips"][0], VideoDataset(m2, cfg(), train=True)[(1, 3)]["clips"][0])


def test_all_bad_videos_raise(fakes, videos):
    _, bad, text = videos
    ds = VideoDataset(Manifest([bad, text], [0, 0], source="broken.csv"), cfg(), train=True)
    with pytest.raises(NoDecodableVideoError, match="none of the 2 videos of broken.csv"):
        ds[(0, 0)]


# ----------------------------------------------------------------------------- EpochSampler


def reference_global_batches(n, b, world, shuffle, seed, epoch, drop_last):
    """Plain-Python reference: the order, cut into global batches, the last one padded by wrapping."""
    order = list(np.random.default_rng([seed, epoch]).permutation(n)) if shuffle else list(range(n))
    g = b * world
    batches = [order[i:i + g] for i in range(0, n, g)]
    if drop_last and len(batches[-1]) < g:
        batches.pop()
    elif batches and len(batches[-1]) % world:
        k = 0
        while len(batches[-1]) % world:
            batches[-1].append(order[k % n])
            k += 1
    return batches


@pytest.mark.parametrize("n,b,world", [(10, 3, 1), (10, 3, 2), (7, 2, 4), (16, 4, 2), (5, 8, 1), (3, 1, 4), (1, 2, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_sampler_against_reference(n, b, world, drop_last, shuffle):
    ref = reference_global_batches(n, b, world, shuffle, 3, 2, drop_last)
    per_rank = [EpochSampler(n, b, shuffle=shuffle, seed=3, epoch=2, rank=r, world=world, drop_last=drop_last).batches()
                for r in range(world)]
    assert all(len(p) == len(ref) for p in per_rank)
    for k, glob in enumerate(ref):
        shares = [per_rank[r][k].tolist() for r in range(world)]
        assert len({len(s) for s in shares}) == 1 and all(len(s) <= b for s in shares)  # equal shares
        assert sum(shares, []) == glob  # together exactly the global batch, disjoint positions
    if not drop_last:
        seen = {i for p in per_rank for bt in p for i in bt.tolist()}
        assert seen == set(range(n))
    keys = list(EpochSampler(n, b, shuffle=shuffle, seed=3, epoch=2, drop_last=drop_last, world=world, rank=world - 1))
    assert [k[0] for k in keys] == [i for bt in per_rank[-1] for i in bt.tolist()]
    assert all(s == sample_seed(3, 2, i) for i, s in keys)


def test_epoch_sampler_shuffle_skip_and_errors():
    a = [k for k, _ in EpochSampler(50, 5, shuffle=True, seed=1, epoch=0, drop_last=False)]
    b = [k for k, _ in EpochSampler(50, 5, shuffle=True, seed=1, epoch=1, drop_last=False)]
    assert sorted(a) == sorted(b) == list(range(50)) and a != b
    assert a == [k for k, _ in EpochSampler(50, 5, shuffle=True, seed=1, epoch=0, drop_last=False)]
    skipped = EpochSampler(50, 5, shuffle=True, seed=1, epoch=0, drop_last=False, skip_batches=3)
    assert [k for k, _ in skipped] == a[15:] and len(skipped) == 35 and skipped.num_batches() == 7
    assert sample_seed(1, 0, 4) != sample_seed(1, 1, 4) and sample_seed(1, 0, 4) != sample_seed(1, 0, 5)
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(5, 2, shuffle=False, seed=0, epoch=0, rank=2, world=2, drop_last=False)
    with pytest.raises(ValueError, match="no items"):
        EpochSampler(0, 2, shuffle=False, seed=0, epoch=0, drop_last=False)


# ----------------------------------------------------------------------------- loader


def test_loader_same_batches_with_and_without_workers(fakes, videos):
    paths, bad, _ = videos
    m = Manifest(paths + [bad], [0, 1, 2, 3, 4, 5], source="t")
    ds = VideoDataset(m, cfg(views=2), train=True)
    kw = dict(shuffle=True, seed=4, epoch=1)
    b0 = list(build_loader(ds, 4, workers=0, **kw))
    b1 = list(build_loader(ds, 4, workers=1, **kw))
    assert [len(b["index"]) for b in b0] == [4, 2]
    for x, y in zip(b0, b1):
        assert torch.equal(x["clips"][0], y["clips"][0]) and torch.equal(x["index"], y["index"])
        assert torch.equal(x["label"], y["label"]) and x["bad_paths"] == y["bad_paths"]
    assert len(b0[0]["clips"]) == 1 and b0[0]["clips"][0].shape == (4, 2, 3, 4, HW, HW)
    assert sum(len(b["bad_paths"]) for b in b0) == 1  # the bad video was asked for once
    # a resumed run skipping the first batch continues with the same data
    resumed = list(build_loader(ds, 4, skip_batches=1, **kw))
    assert len(resumed) == 1 and torch.equal(resumed[0]["clips"][0], b0[1]["clips"][0])
    # two processes: each gets half of every global batch
    r0 = list(build_loader(ds, 2, rank=0, world=2, **kw))
    r1 = list(build_loader(ds, 2, rank=1, world=2, **kw))
    both = torch.cat([torch.cat([x["index"], y["index"]]) for x, y in zip(r0, r1)])
    assert both.tolist() == torch.cat([b["index"] for b in b0]).tolist()


def test_collate_single_rate():
    items = [{"clips": (torch.full((2, 3, 4, 5, 5), float(i)),), "index": i, "label": -1, "bad_paths": [f"p{i}"] * i}
             for i in range(3)]
    batch = collate(items)
    (clips,) = batch["clips"]
    assert clips.shape == (3, 2, 3, 4, 5, 5) and clips[2].eq(2).all()
    assert batch["label"].tolist() == [-1, -1, -1] and batch["bad_paths"] == ["p1", "p2", "p2"]


# ----------------------------------------------------------------------------- check_videos


def test_check_videos(videos, tmp_path):
    paths, bad, text = videos
    cut = tmp_path / "cut.avi"  # an AVI cut in half: the header still states every frame
    with av.open(str(cut), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width = s.height = 32
        noise = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)  # big frames
        for f in noise:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    m = Manifest([paths[0], bad, text, str(cut), paths[1]], [-1] * 5, source="t")
    found = check_videos(m, progress=False)
    assert [p for p, _ in found] == [bad, text, str(cut)]
    reasons = dict(found)
    assert "empty file" in reasons[bad] and "truncated" in reasons[str(cut)]


# ----------------------------------------------------------------------------- the real modules


@pytest.mark.parametrize("train", [True, False])
def test_real_pipeline_shapes_and_determinism(videos, train):
    paths, bad, _ = videos
    c = cfg(crop_size=8, test_short_side=8, test_clips=2, test_crops=3, views=2, num_frames=4, stride=2)
    c.augment.short_side = (8, 10)
    ds = VideoDataset(Manifest(paths + [bad], [0, 1, 2, 3, 4, 5], source="t"), c, train=train)
    batch = next(iter(build_loader(ds, 3, shuffle=True, seed=0)))
    v = 2 if train else 6
    (clips,) = batch["clips"]
    assert clips.shape == (3, v, 3, 4, 8, 8) and clips.dtype == torch.float32
    again = next(iter(build_loader(ds, 3, shuffle=True, seed=0)))
    assert torch.equal(clips, again["clips"][0])


def test_real_two_rate(videos):
    paths, _, _ = videos
    c = cfg(crop_size=8, sampler="two_rate", views=2, num_frames=2, stride=4, fast_alpha=2)
    c.augment.short_side = (8, 10)
    item = VideoDataset(Manifest(paths, [0] * 5, source="t"), c, train=True)[(0, 1)]
    slow, fast = item["clips"]
    assert slow.shape[:3] == (2, 3, 2) and fast.shape[:3] == (2, 3, 4)
