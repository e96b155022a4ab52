"""Video bins (VIE Sec. 5, Table 3): every video cut into N equal parts in time, each a
training video of its own (``data.bins``), its clips sampled inside its part."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vidssl.config import load_config
from vidssl.data.datasets import VideoDataset, bin_range
from vidssl.data.manifests import load_manifest, write_manifest
from vidssl.errors import ConfigError, ManifestError


def test_bins_cover_the_video_without_overlap():
    for n_frames in (10, 64, 101):
        for bins in (1, 2, 3, 7):
            ranges = [bin_range(n_frames, f"{b}/{bins}") for b in range(bins)]
            covered = [f for start, length in ranges for f in range(start, start + length)]
            assert covered == list(range(n_frames))
    assert bin_range(3, "4/5") == (2, 1)  # more bins than frames: at least one frame each


def test_binned_manifest_rows(synth_dir):
    m = load_manifest(synth_dir / "train.csv")
    b = m.binned(3)
    assert len(b) == 3 * len(m)
    assert b.paths[:3] == [m.paths[0]] * 3 and b.labels[3:6] == [m.labels[1]] * 3
    assert b.columns["bin"][:4] == ["0/3", "1/3", "2/3", "0/3"]
    assert b.columns["appearance"][:3] == [m.columns["appearance"][0]] * 3
    with pytest.raises(ManifestError, match="already has a 'bin' column"):
        b.binned(2)
    with pytest.raises(ConfigError, match="data.bins"):
        load_config("ir_tiny", ["data.bins=0"])


def test_clips_of_a_bin_stay_inside_it(make_video, frame_level, tmp_path):
    """Frame t of the video is grey level frame_level(t): the mean of a clip tells its frames."""
    video = make_video("v.mp4", frames=40)
    write_manifest(tmp_path / "m.csv", [str(video)], [0])
    m = load_manifest(tmp_path / "m.csv").binned(4)
    cfg = load_config("supervised_tiny", ["data.modality=rgb", "data.num_frames=3", "data.stride=2", "data.views=1",
                                          "data.crop_size=16", "data.augment.short_side=[32, 32]",
                                          "data.augment.color_p=0", "data.augment.grayscale_p=0",
                                          "data.augment.blur_p=0", "data.augment.mean=[0, 0, 0]",
                                          "data.augment.std=[1, 1, 1]", "data.test_short_side=32",
                                          "data.test_clips=2"]).data
    levels = {frame_level(t, 40): t for t in range(40)}
    for train in (True, False):
        ds = VideoDataset(m, cfg, train=train)
        assert len(ds) == 4
        for row in range(4):
            for seed in range(5):
                clips = ds[(row, seed)]["clips"][0]  # [V, 3, T, S, S]
                means = (clips.mean(dim=(1, 3, 4)) * 255).round().numpy().reshape(-1)
                frames = [levels[min(levels, key=lambda lv: abs(lv - x))] for x in means]
                assert all(10 * row <= f < 10 * row + 10 for f in frames), (train, row, frames)


def test_pretraining_on_bins_trains_on_n_times_the_videos(synth_dir, tmp_path):
    from vidssl.engine.trainer import train

    n = len(load_manifest(synth_dir / "train.csv"))
    tiny = ["model.width=4", "data.num_frames=4", "data.crop_size=24", "data.test_short_side=28",
            "data.augment.short_side=[28, 32]", "data.batch_size=8", "data.workers=0", "train.epochs=1",
            "optim.warmup_epochs=0", "train.progress=false"]
    run = train(load_config("ir_tiny", [f"data.train={synth_dir / 'train.csv'}", "data.bins=2", *tiny]),
                tmp_path / "run")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_videos"] == 2 * n and summary["steps"] == 2 * n // 8
    import torch

    bank = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert any(v.shape[0] == 2 * n for k, v in bank.items() if "bank" in k and hasattr(v, "shape"))
    assert np.isfinite(summary["final_loss"])
