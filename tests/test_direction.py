"""Direction-sensitive classes of the built-in data (move_left / move_right) and the one
switch that keeps their direction: ``data.augment.flip=false`` in pretraining, carried by
the checkpoint into every evaluation and fine-tuning (large-scale study, App. B.5)."""
from __future__ import annotations

import numpy as np
import pytest

from vidssl.config import load_config
from vidssl.data.datasets import VideoDataset
from vidssl.data.manifests import load_manifest
from vidssl.data.synthetic import DIRECTION_CLASSES, PRESETS, VideoSpec, make_synthetic, render_video
from vidssl.errors import SyntheticError


def horizontal_motion(frames: np.ndarray) -> float:
    """Median dx (px/frame) of the pixels that move, Farneback flow on the grey frames."""
    import cv2

    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    dx = []
    for a, b in zip(grey, grey[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        moving = np.hypot(flow[..., 0], flow[..., 1]) > 0.5
        dx.append(flow[..., 0][moving])
    return float(np.median(np.concatenate(dx)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_left_and_right_move_the_way_they_say_and_a_flip_swaps_them(seed):
    left = render_video(VideoSpec(seed, "move_left", "checker_cool", "train", seed=seed, frames=8))
    right = render_video(VideoSpec(seed, "move_right", "checker_cool", "train", seed=seed, frames=8))
    assert horizontal_motion(left) < -0.5 < 0.5 < horizontal_motion(right)
    assert horizontal_motion(left[:, :, ::-1]) > 0.5  # a mirrored move_left is a move_right
    up = render_video(VideoSpec(seed, "move_up", "checker_cool", "train", seed=seed, frames=8))
    assert abs(horizontal_motion(up)) < 0.5 and abs(horizontal_motion(up[:, :, ::-1])) < 0.5


def test_direction_preset_and_names():
    assert PRESETS["direction"]["classes"] == DIRECTION_CLASSES == ("move_left", "move_right", "move_up", "move_down")
    with pytest.raises(SyntheticError, match="bad class list"):
        make_synthetic("/nonexistent", videos=8, classes=["move_sideways"])


@pytest.fixture(scope="module")
def direction_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("direction")
    made = make_synthetic(out, videos=16, size=32, frames=16, test_fraction=0.25, val_fraction=0.0,
                          classes=DIRECTION_CLASSES)
    return load_manifest(made["train"])


def _clip_motions(manifest, overrides, n_seeds=12) -> list[float]:
    """Horizontal motion of the training clips of the move_left videos (raw RGB, no colour draws)."""
    cfg = load_config("supervised_tiny", ["data.modality=rgb", "data.num_frames=6", "data.stride=1",
                                          "data.crop_size=32", "data.augment.short_side=[32, 32]",
                                          "data.augment.area=[1.0, 1.0]", "data.augment.color_p=0",
                                          "data.augment.grayscale_p=0", "data.augment.blur_p=0", "data.views=1",
                                          "data.augment.mean=[0, 0, 0]", "data.augment.std=[1, 1, 1]", *overrides])
    ds = VideoDataset(manifest, cfg.data, train=True)
    left = [i for i, y in enumerate(manifest.labels) if manifest.classes[y] == "move_left"]
    out = []
    for seed in range(n_seeds):
        for i in left:
            clip = ds[(i, seed)]["clips"][0][0]  # [C, T, S, S] in [0, 1]
            frames = (clip.permute(1, 2, 3, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            out.append(horizontal_motion(frames))
    return out


def test_flipping_on_mirrors_part_of_the_left_clips_and_off_keeps_them_all(direction_data):
    on = _clip_motions(direction_data, ["data.augment.flip=true"])
    off = _clip_motions(direction_data, ["data.augment.flip=false"])
    assert all(m < -0.3 for m in off)  # every move_left clip still moves left
    rightwards = sum(m > 0.3 for m in on)
    assert 0.2 * len(on) < rightwards < 0.8 * len(on)  # with flips, about half look like move_right


def test_the_switch_is_carried_from_pretraining_into_evaluation(tmp_path, direction_data, synth_dir):
    from vidssl.engine.trainer import train
    from vidssl.eval.features import make_context

    tiny = ["model.width=4", "data.num_frames=4", "data.crop_size=24", "data.test_short_side=28",
            "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "train.epochs=1",
            "optim.warmup_epochs=0", "train.progress=false", "data.test_clips=1"]
    cfg = load_config("ir_tiny", [f"data.train={synth_dir / 'train.csv'}", "data.augment.flip=false", *tiny])
    run = train(cfg, tmp_path / "run")
    ckpt = str(run / "checkpoints" / "last.pt")
    test = str(synth_dir / "test.csv")
    assert make_context(ckpt, test, test, [], progress=False).cfg.data.augment.flip is False
    # a checkpoint pretrained with flips is fine-tuned without them by the same key
    assert make_context(ckpt, test, test, ["data.augment.flip=true"], progress=False).cfg.data.augment.flip is True
