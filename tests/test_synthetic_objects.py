"""The built-in data with several objects (action detection): each object has its own class and
box track, the boxes hold the pixels the objects change, and one object is the old dataset."""
from __future__ import annotations

import numpy as np
import pytest

from vidssl.data import synthetic
from vidssl.data.boxes import load_boxes
from vidssl.data.manifests import load_manifest
from vidssl.data.synthetic import (CLASSES, PRESETS, VideoSpec, keyframe_times, make_synthetic, object_boxes,
                                   render_video, video_specs)
from vidssl.errors import SyntheticError


def background(spec: VideoSpec) -> np.ndarray:
    """The frame without its moving objects (still camera): the scene and its static distractors."""
    bg = synthetic._draw(spec)[0]
    return np.clip(bg * 255.0 + 0.5, 0, 255).astype(np.uint8)


def px(box, size):
    return [int(round(v * size)) for v in box]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_enclose_the_pixels_the_objects_change_and_are_tight(seed):
    specs = [s for s in video_specs(80, seed=seed, objects=3, frames=51) if s.index < 40]
    checked = tight = 0
    for spec in specs:
        frames, bg = render_video(spec), background(spec)
        boxes = object_boxes(spec)
        for t in keyframe_times(spec):
            here = [b for b in boxes if b[0] == t]
            f = int(round(t * spec.fps))
            changed = np.abs(frames[f].astype(int) - bg.astype(int)).max(-1) > 4  # > 1 % alpha of any colour
            if len(here) < 1 + len(spec.objects):
                continue  # an object wraps around an edge here: it has no box, its pixels are unboxed
            inside = np.zeros_like(changed)
            for _, _, _, box in here:
                x1, y1, x2, y2 = px(box, spec.size)
                inside[y1:y2, x1:x2] = True
            assert not (changed & ~inside).any(), (spec, t)  # every changed pixel lies in a box
            checked += 1
            for k, (_, o, label, box) in enumerate(here):
                assert label == [spec.label, *spec.objects][o]
                others = [b for j, (_, _, _, b) in enumerate(here) if j != k]
                x1, y1, x2, y2 = px(box, spec.size)
                if any(px(b, spec.size)[0] < x2 and x1 < px(b, spec.size)[2] and px(b, spec.size)[1] < y2
                       and y1 < px(b, spec.size)[3] for b in others):
                    continue  # overlapping boxes: the other object may hide this one's edge
                rows, cols = np.nonzero(changed[y1:y2, x1:x2])
                # the outline (dark) differs from every scene: the changed pixels reach the box's
                # edges, up to the anti-aliased fringe of one pixel
                assert rows.min() <= 1 and cols.min() <= 1, (spec, t, o)
                assert rows.max() >= y2 - y1 - 2 and cols.max() >= x2 - x1 - 2, (spec, t, o)
                tight += 1
    assert checked >= 6 and tight >= 6


def test_each_object_moves_with_its_own_class():
    """The box centre of a move_up object goes up, a move_down one down, an oscillating or
    rotating one stays near its place: per-object tracks, not one shared motion."""
    specs = [s for s in video_specs(200, seed=3, objects=3, frames=64)]
    moves = {"move_up": [], "move_down": [], "rotate": []}
    for spec in specs[:80]:
        boxes = object_boxes(spec)
        for o, label in enumerate([spec.label, *spec.objects]):
            if label not in moves:
                continue
            track = {t: b for t, oo, _, b in boxes if oo == o}
            if 1.0 in track and 2.0 in track:
                dy = (track[2.0][1] + track[2.0][3] - track[1.0][1] - track[1.0][3]) / 2 * spec.size
                moves[label].append(dy)
    # 1.5 px/frame x rate in [0.8, 1.25], 25 frames: 30-47 px, or that minus 64 after a wrap
    assert moves["move_up"] and all(-50 < d < -25 or 14 < d < 35 for d in moves["move_up"])
    assert moves["move_down"] and all(25 < d < 50 or -35 < d < -14 for d in moves["move_down"])
    assert moves["rotate"] and all(abs(d) < 4 for d in moves["rotate"])


def test_specs_of_several_objects_and_the_single_object_data_unchanged():
    specs = video_specs(120, seed=1, objects=3, test_fraction=0.25, val_fraction=0.15)
    counts = [1 + len(s.objects) for s in specs]
    assert set(counts) == {2, 3}
    assert all(len({s.label, *s.objects}) == 1 + len(s.objects) for s in specs)  # distinct within a video
    per_class = [sum(c in (s.label, *s.objects) for s in specs) for c in CLASSES]
    assert min(per_class) > 0.6 * max(per_class)  # every class, in similar numbers
    assert video_specs(120, seed=1, objects=3, test_fraction=0.25, val_fraction=0.15) == specs
    # one object: the old specs, scenes and splits; the scenes are crossed alike with several
    single = video_specs(120, seed=1, test_fraction=0.25, val_fraction=0.15)
    assert all(s.objects == () for s in single)
    assert [(s.scene, s.split) for s in single] == [(s.scene, s.split) for s in specs]
    # object 0 of a video with more objects is drawn as the single object of the same index
    one = VideoSpec(5, "orbit", "dots_purple", "train", seed=2, frames=8)
    two = VideoSpec(5, "orbit", "dots_purple", "train", seed=2, frames=8, objects=("move_up",))
    p1, p2 = synthetic.motion_parameters(one), synthetic.motion_parameters(two)
    assert p2.pop("objects")[0]["label"] == "move_up" and p1 == p2
    a, b = render_video(one), render_video(two)
    assert not np.array_equal(a, b) and (a != b).any(-1).mean() < 0.3  # the second object changes a part
    assert PRESETS["detection"]["objects"] == 3
    with pytest.raises(SyntheticError, match="objects must be an integer in"):
        video_specs(10, objects=9)


def test_make_synthetic_writes_boxes_beside_multi_label_manifests(tmp_path):
    made = make_synthetic(tmp_path, videos=16, size=32, frames=32, test_fraction=0.25, objects=3)
    assert {"train_boxes", "test_boxes"} <= set(made) and "val_boxes" not in made
    train = load_manifest(made["train"])
    assert train.multi_label and all(2 <= len(s) <= 3 for s in train.label_sets)
    table = load_boxes(made["train_boxes"], train)
    assert len(table) > 0 and set(table.classes) <= set(CLASSES)
    assert set(table.time.tolist()) <= {1.0}  # 32 frames at 25 fps: one keyframe, at 1 s
    # a box's class is one of its video's classes
    names = [set(train.classes[y] for y in s) for s in train.label_sets]
    assert all(table.classes[y] in names[v] for v, s in zip(table.video, table.label_sets) for y in s)
    again = make_synthetic(tmp_path, videos=16, size=32, frames=32, test_fraction=0.25, objects=3)
    assert again == made  # reused, nothing rendered
