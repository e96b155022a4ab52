"""The AVA-layout boxes CSV: grouping one row per (box, action) into boxes with label sets, and
one-line errors that name the first offenders for every kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest

from vidssl.data.boxes import boxes_path, load_boxes, write_boxes
from vidssl.data.manifests import Manifest
from vidssl.errors import ManifestError, ManifestNotFoundError


@pytest.fixture
def manifest(tmp_path):
    paths = [str(tmp_path / "videos" / f"{name}.mp4") for name in ("clipA", "clipB", "clipC")]
    return Manifest(paths, [-1, -1, -1], [], {}, source=str(tmp_path / "m.csv"))


DURATIONS = {0: (75, 25.0), 1: (250, 25.0), 2: (30, 30.0)}  # 2.96 s, 9.96 s, 0.97 s


def load(tmp_path, text, manifest, **kw):
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    return load_boxes(path, manifest, durations=kw.pop("durations", DURATIONS), **kw)


def test_rows_of_one_box_are_grouped_by_person_id(tmp_path, manifest):
    text = ("clipA,1,0.1,0.2,0.5,0.6,walk,0\n"
            "clipA,1,0.1,0.2,0.5,0.6,talk,0\n"  # the same person: one box, two actions
            "clipA,1,0.1,0.2,0.5,0.6,walk,1\n"  # another person in the same place: another box
            "clipB,2.0,0.0,0.0,1.0,1.0,sit,3\n"
            "clipA,2,0.6,0.6,0.9,0.9,sit;walk,0\n")  # several actions joined in one row
    t = load(tmp_path, text, manifest)
    assert t.classes == ["sit", "talk", "walk"]
    assert len(t) == 4 and t.video.tolist() == [0, 0, 0, 1] and t.time.tolist() == [1, 1, 2, 2]
    assert t.label_sets == [[1, 2], [2], [0, 2], [0]] and t.person == ["0", "1", "0", "3"]
    np.testing.assert_allclose(t.boxes[0], [0.1, 0.2, 0.5, 0.6])
    assert [(v, s, r.tolist()) for v, s, r in t.keyframes()] == [(0, 1.0, [0, 1]), (0, 2.0, [2]), (1, 2.0, [3])]
    np.testing.assert_array_equal(t.targets(), [[0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 0, 0]])


def test_without_person_ids_rows_group_by_their_corners_and_a_header_is_skipped(tmp_path, manifest):
    text = ("video,timestamp,x1,y1,x2,y2,action\n"
            "clipC,0.5,0.1,0.1,0.2,0.2,3\n"
            "clipC,0.5,0.1,0.1,0.2,0.2,1\n"
            "clipC,0.5,0.3,0.1,0.4,0.2,1\n"
            "videos/clipB.mp4,0,0,0,1,1,\n")  # a path relative to the CSV; a box without an action
    t = load(tmp_path, text, manifest)
    assert t.classes == ["0", "1", "2", "3"]  # integer ids (AVA's): 0 .. max
    assert t.video.tolist() == [1, 2, 2] and t.label_sets == [[], [1, 3], [1]]
    # a test table is numbered with the training classes
    test = load(tmp_path, "clipA,1,0,0,0.5,0.5,2\n", manifest, classes=t.classes)
    assert test.label_sets == [[2]] and test.classes == t.classes


def test_write_then_load_round_trip(tmp_path, manifest):
    rows = [("clipA", 1.0, 0.125, 0.25, 0.5, 0.75, "jump", "0"), ("clipA", 1.0, 0.5, 0.5, 0.75, 0.875, "run", "1"),
            ("clipB", 3.0, 0.0, 0.0, 1.0, 1.0, "run", "0")]
    path = write_boxes(tmp_path / "out_boxes.csv", rows)
    assert path.read_text().splitlines()[0] == "clipA,1.000,0.1250,0.2500,0.5000,0.7500,jump,0"  # AVA: no header
    t = load_boxes(path, manifest, durations=DURATIONS)
    assert t.classes == ["jump", "run"] and t.label_sets == [[0], [1], [1]]
    np.testing.assert_allclose(t.boxes, [r[2:6] for r in rows])
    assert boxes_path(tmp_path / "train.csv") == tmp_path / "train_boxes.csv"


@pytest.mark.parametrize("text, message", [
    ("clipA,1,0.1,0.2,0.5,0.6\n", r"1 of 1 rows are not 'video, timestamp, x1, y1, x2, y2, label\[, person\]': "
                                 r"line 1 \(6 fields\)"),
    ("clipA,1,0.1,0.2,0.5,0.6,a\nclipA,one,0.1,0.2,0.5,0.6,a\n",
     r"1 of 2 rows have a timestamp or corner that is not a number: line 2"),
    ("clipA,1,0.1,0.2,0.5,0.6,a\nnowhere,1,0.1,0.2,0.5,0.6,a\nclipZ,1,0,0,1,1,a\n",
     r"2 of 3 rows name videos not in the manifest .*m.csv: 'nowhere' \(line 2\), 'clipZ' \(line 3\)"),
    ("clipA,1,0.5,0.2,0.5,0.6,a\nclipA,1,0.1,0.2,0.5,0.6,a\nclipA,1,0.1,0.7,0.5,0.6,a\n",
     r"2 of 3 boxes are outside the frame \[0, 1\] or empty \(x2 <= x1 or y2 <= y1\): "
     r"line 1 \(0.5, 0.2, 0.5, 0.6\), line 3"),
    ("clipA,1,-0.2,0.2,0.5,0.6,a\nclipA,1,0.1,0.2,0.5,1.3,a\n", r"2 of 2 boxes are outside the frame"),
    ("clipA,2.96,0,0,1,1,a\nclipA,3.5,0,0,1,1,a\nclipC,-1,0,0,1,1,a\n",
     r"2 of 3 rows have timestamps outside their video: line 2: 'clipA' at 3.5 s \(the video lasts 2.96 s\), "
     r"line 3: 'clipC' at -1 s"),
    ("clipA,1,0.1,0.2,0.5,0.6,walk,7\nclipA,1,0.1,0.2,0.6,0.6,talk,7\n",
     r"rows give one person two boxes at one keyframe: person '7' of 'clipA' at 1 s \(lines 1 and 2\)"),
    ("clipA,1,0.1,0.2,0.5,0.6,walk;;talk\n", r"malformed label sets"),
    ("", r"lists no boxes"),
])
def test_bad_inputs_are_named_in_one_line(tmp_path, manifest, text, message):
    with pytest.raises(ManifestError, match=message) as err:
        load(tmp_path, text, manifest)
    assert "\n" not in str(err.value)


def test_unknown_class_names_against_the_training_classes(tmp_path, manifest):
    with pytest.raises(ManifestError, match=r"2 unknown class names, e.g. fly, swim"):
        load(tmp_path, "clipA,1,0,0,1,1,walk\nclipA,2,0,0,1,1,swim;fly\n", manifest, classes=["talk", "walk"])


def test_first_offenders_only_and_a_missing_file(tmp_path, manifest):
    text = "".join(f"clip{i},1,0,0,1,1,a\n" for i in range(9))
    with pytest.raises(ManifestError, match=r"9 of 9 rows name videos .*'clip4' \(line 5\) \.\.\. and 4 more$"):
        load(tmp_path, text, manifest)
    with pytest.raises(ManifestNotFoundError, match="does not exist"):
        load_boxes(tmp_path / "nowhere.csv", manifest)


def test_timestamps_are_checked_against_probed_videos(tmp_path, make_video):
    video = make_video("videos/v.mp4", frames=20, fps=10)  # 1.9 s
    m = Manifest([str(video)], [-1], [], {}, source=str(tmp_path / "m.csv"))
    (tmp_path / "b.csv").write_text("v,1.9,0,0,1,1,a\n")
    assert len(load_boxes(tmp_path / "b.csv", m)) == 1
    (tmp_path / "b.csv").write_text("v,2.0,0,0,1,1,a\n")
    with pytest.raises(ManifestError, match="outside their video"):
        load_boxes(tmp_path / "b.csv", m)
