"""The benchmark preset of the built-in dataset: photograph scenes, a validation split,
``builtin-bench:`` manifests, and the property it exists for (one frame tells the scene,
not the motion class; motion tells the class), with the hand-made features of
test_synthetic.py."""
import numpy as np
import pytest

from test_synthetic import separation
from vidssl.data import builtin
from vidssl.data.manifests import load_manifest
from vidssl.data.photo_backgrounds import PHOTO_SCENES, load_photo, photo_background
from vidssl.data.synthetic import CLASSES, PRESETS, VideoSpec, make_synthetic, render_video, video_specs
from vidssl.errors import ManifestError, SyntheticError


def test_benchmark_preset_has_the_promised_splits_balanced_and_crossed():
    specs = video_specs(**PRESETS["benchmark"])
    splits = {name: [s for s in specs if s.split == name] for name in ("train", "val", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 1200, "val": 300, "test": 600}
    assert [s.index for s in specs] == list(range(2100))  # train, then val, then test
    assert [s.split for s in specs] == ["train"] * 1200 + ["val"] * 300 + ["test"] * 600
    for rows in splits.values():
        labels = [sum(s.label == c for s in rows) for c in CLASSES]
        scenes = [sum(s.scene == a for s in rows) for a in PHOTO_SCENES]
        assert max(labels) - min(labels) <= 1 and max(scenes) - min(scenes) <= 1
        pairs = {(s.label, s.scene) for s in rows}
        assert len(pairs) == len(CLASSES) * len(PHOTO_SCENES)  # every class in every scene


def test_no_validation_split_leaves_the_small_dataset_unchanged():
    assert video_specs(60, seed=2) == video_specs(60, seed=2, val_fraction=0.0)
    with_val = video_specs(60, seed=2, val_fraction=0.2)
    assert sum(s.split == "val" for s in with_val) == 12
    assert sum(s.split == "test" for s in with_val) == 18
    with pytest.raises(SyntheticError, match="val_fraction"):
        video_specs(60, test_fraction=0.5, val_fraction=0.5)
    with pytest.raises(SyntheticError, match="no room"):
        video_specs(4, test_fraction=0.4, val_fraction=0.4)


def test_photos_ship_with_the_package_and_crops_differ_per_video():
    for scene in PHOTO_SCENES:
        photo = load_photo(scene)
        assert photo.dtype == np.float32 and photo.ndim == 3 and min(photo.shape[:2]) == 192
    a = photo_background(np.random.default_rng(0), "chelsea", 48)
    b = photo_background(np.random.default_rng(0), "chelsea", 48)
    c = photo_background(np.random.default_rng(1), "chelsea", 48)
    assert a.shape == (48, 48, 3) and np.array_equal(a, b) and not np.allclose(a, c)
    wide = photo_background(np.random.default_rng(0), "chelsea", 48, margin=10)
    assert wide.shape == (68, 68, 3)
    with pytest.raises(SyntheticError, match="unknown photo scene"):
        photo_background(np.random.default_rng(0), "stripes_warm", 48)


def test_photo_frames_have_natural_image_statistics():
    """Photographs, not patterns: the power spectrum falls off roughly as 1/f^2 (slope of
    log power against log frequency between -1.5 and -3.5 for natural images)."""
    slopes = []
    for i, scene in enumerate(PHOTO_SCENES):
        frame = render_video(VideoSpec(i, "rotate", scene, "train", size=64, frames=1))[0].mean(-1)
        f = np.abs(np.fft.fftshift(np.fft.fft2(frame - frame.mean()))) ** 2
        yy, xx = np.mgrid[-32:32, -32:32]
        r = np.hypot(yy, xx).astype(int)
        radial = np.bincount(r.ravel(), f.ravel()) / np.bincount(r.ravel())
        freq = np.arange(2, 28)
        slopes.append(np.polyfit(np.log(freq), np.log(radial[freq]), 1)[0])
    assert -3.5 < float(np.median(slopes)) < -1.5, slopes


def test_on_photo_scenes_one_frame_tells_the_scene_and_only_motion_the_class():
    specs = video_specs(videos=160, seed=0, size=48, frames=12, test_fraction=0.4, scenes=PHOTO_SCENES[:4])
    app_scene, app_motion, mot_motion = separation(specs, PHOTO_SCENES[:4])
    assert app_scene > 0.8  # chance 1/4
    assert app_motion < 0.3  # chance 1/8
    assert mot_motion > 0.5


def test_builtin_bench_names_its_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDSSL_DATA", str(tmp_path))
    small = dict(PRESETS["benchmark"], videos=28, size=32, frames=8)
    monkeypatch.setitem(PRESETS, "benchmark", small)
    for split in ("train", "val", "test", "val_appearance"):
        path = builtin.resolve_builtin(f"builtin-bench:{split}")
        assert path == str(tmp_path / "synth-bench" / f"{split}.csv")
    m = load_manifest(builtin.resolve_builtin("builtin-bench:val"))
    a = load_manifest(builtin.resolve_builtin("builtin-bench:val_appearance"))
    assert len(m) == 4 and m.paths == a.paths and set(a.classes) <= set(PHOTO_SCENES)
    assert builtin.is_builtin("builtin-bench:test") and not builtin.is_builtin("bench:test")
    with pytest.raises(ManifestError, match="builtin-bench:val"):
        builtin.resolve_builtin("builtin-bench:nope")
    with pytest.raises(ManifestError, match="builtin:train"):  # the small dataset has no val split
        builtin.resolve_builtin("builtin:val")


def test_make_synthetic_writes_val_manifests(tmp_path):
    out = make_synthetic(tmp_path / "d", videos=20, size=32, frames=6, val_fraction=0.25, test_fraction=0.25,
                         scenes=PHOTO_SCENES[:2])
    assert set(out) == {"train", "val", "test", "train_appearance", "val_appearance", "test_appearance", "info"}
    sizes = {k: len(load_manifest(out[k])) for k in ("train", "val", "test")}
    assert sizes == {"train": 10, "val": 5, "test": 5}
    assert make_synthetic(tmp_path / "d", videos=20, size=32, frames=6, val_fraction=0.25, test_fraction=0.25,
                          scenes=PHOTO_SCENES[:2]) == out  # reused
