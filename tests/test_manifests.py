"""Manifest readers: CSV, UCF101 / HMDB51 split files, Kinetics CSVs, folders.

The split files here are hand-written in the official formats (a few lines each);
the videos are empty placeholder files, since reading a manifest only checks that
files exist.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from vidssl.data.manifests import Manifest, load_manifest, parse_labels, write_manifest
from vidssl.errors import ManifestError


def touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


# ----------------------------------------------------------------------------- CSV


def test_csv_relative_absolute_integer_labels_and_extra_columns(tmp_path):
    touch(tmp_path / "videos" / "a.mp4", tmp_path / "videos" / "b.mp4")
    other = tmp_path / "elsewhere" / "c.mp4"
    touch(other)
    csv = tmp_path / "m.csv"
    csv.write_text(f"path,label,appearance\nvideos/a.mp4,2,red\nvideos/b.mp4,0,blue\n{other},,red\n")
    m = load_manifest(csv)
    assert m.paths == [str(tmp_path / "videos" / "a.mp4"), str(tmp_path / "videos" / "b.mp4"), str(other)]
    assert m.labels == [2, 0, -1]
    assert m.classes == []
    assert m.columns == {"appearance": ["red", "blue", "red"]}
    assert m.source == str(csv) and len(m) == 3
    assert m.num_classes == 3


def test_csv_class_names_sorted_and_label_column(tmp_path):
    touch(*(tmp_path / f"{i}.mp4" for i in range(4)))
    csv = tmp_path / "m.csv"
    csv.write_text("path,label,appearance\n0.mp4,walk,red\n1.mp4,jump,blue\n2.mp4,walk,green\n3.mp4,run,blue\n")
    m = load_manifest(csv)
    assert m.classes == ["jump", "run", "walk"]
    assert m.labels == [2, 0, 2, 1]
    a = load_manifest(csv, label_column="appearance")
    assert a.classes == ["blue", "green", "red"] and a.labels == [2, 0, 1, 0]
    assert a.columns == {"label": ["walk", "jump", "walk", "run"]}
    # relabel gives the same as reading with that column, and back again
    r = m.relabel("appearance")
    assert (r.labels, r.classes, r.columns) == (a.labels, a.classes, a.columns)
    back = r.relabel("label")
    assert (back.labels, back.classes) == (m.labels, m.classes)
    assert back.columns == {"appearance": ["red", "blue", "green", "blue"]}
    with pytest.raises(ManifestError, match="no column 'colour'"):
        m.relabel("colour")
    with pytest.raises(ManifestError, match="no label column 'colour'"):
        load_manifest(csv, label_column="colour")


def test_subset_keeps_columns_and_classes(tmp_path):
    touch(*(tmp_path / f"{i}.mp4" for i in range(3)))
    (tmp_path / "m.csv").write_text("path,label,x\n0.mp4,a,u\n1.mp4,b,v\n2.mp4,c,w\n")
    m = load_manifest(tmp_path / "m.csv").subset([2, 0])
    assert [Path(p).name for p in m.paths] == ["2.mp4", "0.mp4"]
    assert m.labels == [2, 0] and m.classes == ["a", "b", "c"] and m.columns == {"x": ["w", "u"]}


def test_csv_missing_files_lists_first_five_and_total(tmp_path):
    touch(tmp_path / "ok.mp4")
    rows = "".join(f"gone{i}.mp4,0\n" for i in range(7))
    (tmp_path / "m.csv").write_text("path,label\nok.mp4,1\n" + rows)
    with pytest.raises(ManifestError) as e:
        load_manifest(tmp_path / "m.csv")
    msg = str(e.value)
    assert "7 of 8 videos are missing" in msg
    assert all(f"gone{i}.mp4" in msg for i in range(5)) and "gone5.mp4" not in msg
    assert "2 more" in msg
    m = load_manifest(tmp_path / "m.csv", check_files=False)  # check-videos reads it anyway
    assert len(m) == 8


def test_csv_bad_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(ManifestError, match="no videos"):
        load_manifest(tmp_path / "empty.csv")
    (tmp_path / "nopath.csv").write_text("file,label\na.mp4,1\n")
    with pytest.raises(ManifestError, match="'path' column"):
        load_manifest(tmp_path / "nopath.csv")
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nothere.csv")
    (tmp_path / "list.txt").write_text("a.mp4\n")
    with pytest.raises(ManifestError, match="cannot tell the manifest format"):
        load_manifest(tmp_path / "list.txt")
    with pytest.raises(ManifestError, match="unknown manifest format"):
        load_manifest(tmp_path / "empty.csv", format="json")
    touch(tmp_path / "a.mp4")
    (tmp_path / "neg.csv").write_text("path,label\na.mp4,-3\n")
    with pytest.raises(ManifestError, match="negative labels"):
        load_manifest(tmp_path / "neg.csv")


def test_write_manifest_round_trip(tmp_path):
    touch(tmp_path / "v" / "a.mp4", tmp_path / "v" / "b.mp4", tmp_path / "out" / "c.mp4")
    out = tmp_path / "v" / "m.csv"
    abs_a = tmp_path / "v" / "a.mp4"
    write_manifest(out, [abs_a, "b.mp4", tmp_path / "out" / "c.mp4"], [1, -1, 0], appearance=["x", "y", "z"])
    lines = out.read_text().splitlines()
    assert lines[0] == "path,label,appearance"
    assert lines[1] == "a.mp4,1,x"  # absolute inside the CSV's folder -> relative
    assert lines[3].startswith(str(tmp_path / "out" / "c.mp4"))  # outside -> stays absolute
    m = load_manifest(out)
    assert m.paths == [str(abs_a), str(tmp_path / "v" / "b.mp4"), str(tmp_path / "out" / "c.mp4")]
    assert m.labels == [1, -1, 0] and m.columns == {"appearance": ["x", "y", "z"]}
    with pytest.raises(ManifestError, match="labels"):
        write_manifest(out, ["a.mp4"], [1, 2])


def test_parse_labels_reference():
    assert parse_labels(["3", "", "0"]) == ([3, -1, 0], [])
    assert parse_labels(["b", "a", "1"]) == ([2, 1, 0], ["1", "a", "b"])  # mixed: all names
    assert parse_labels(["", ""]) == ([-1, -1], [])
    assert parse_labels(["x", "y"], classes=["y", "x"]) == ([1, 0], ["y", "x"])
    with pytest.raises(ManifestError, match="unknown class names"):
        parse_labels(["z"], classes=["x"])


# ----------------------------------------------------------------------------- UCF101

UCF_CLASSES = ["YoYo", "ApplyEyeMakeup", "HandstandPushups"]  # classInd order, deliberately not sorted


def write_ucf(split_dir: Path, video_root: Path) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES)))
    (split_dir / "trainlist01.txt").write_text(
        "YoYo/v_YoYo_g08_c01.avi 1\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 2\r\n"
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 3\r\n"
    )
    (split_dir / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
        "YoYo/v_YoYo_g01_c02.avi\r\n"
    )
    for lst in ("trainlist01.txt", "testlist01.txt"):
        for ln in (split_dir / lst).read_text().splitlines():
            touch(video_root / ln.split()[0])


def test_ucf101_train_and_test_lists(tmp_path):
    write_ucf(tmp_path / "ucfTrainTestlist", tmp_path / "UCF-101")
    train = load_manifest(tmp_path / "ucfTrainTestlist", root=tmp_path / "UCF-101", subset="train")
    assert train.classes == UCF_CLASSES
    assert train.labels == [0, 1, 2]
    assert train.paths[2] == str(tmp_path / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g08_c01.avi")
    test = load_manifest(tmp_path / "ucfTrainTestlist", format="ucf101", root=tmp_path / "UCF-101", subset="test")
    assert test.labels == [1, 0]  # from the class folder through classInd
    assert test.paths[1] == str(tmp_path / "UCF-101" / "YoYo" / "v_YoYo_g01_c02.avi")
    with pytest.raises(ManifestError, match="trainlist02.txt"):
        load_manifest(tmp_path / "ucfTrainTestlist", root=tmp_path / "UCF-101", split=2)
    with pytest.raises(ManifestError, match="2 of 3 videos are missing"):
        (tmp_path / "UCF-101" / "YoYo" / "v_YoYo_g08_c01.avi").unlink()
        (tmp_path / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi").unlink()
        load_manifest(tmp_path / "ucfTrainTestlist", root=tmp_path / "UCF-101")


def test_ucf101_videos_beside_lists_and_frame_folders(tmp_path):
    write_ucf(tmp_path / "ucf", tmp_path / "ucf")  # root defaults to the split folder
    m = load_manifest(tmp_path / "ucf", subset="test")
    assert m.paths[0] == str(tmp_path / "ucf" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    # frames extracted to folders named like the videos (for the 'frames' backend)
    frames = tmp_path / "frames"
    write_ucf(tmp_path / "lists", tmp_path / "unused")
    for ln in (tmp_path / "lists" / "testlist01.txt").read_text().splitlines():
        d = frames / ln.split()[0].replace(".avi", "")
        touch(d / "000001.jpg")
    m = load_manifest(tmp_path / "lists", root=frames, subset="test")
    assert m.paths[1] == str(frames / "YoYo" / "v_YoYo_g01_c02")


def test_ucf101_unknown_class_folder(tmp_path):
    write_ucf(tmp_path / "s", tmp_path / "s")
    with open(tmp_path / "s" / "testlist01.txt", "a") as f:
        f.write("Surfing/v_Surfing_g01_c01.avi\r\n")
    with pytest.raises(ManifestError, match="not named in classInd.txt"):
        load_manifest(tmp_path / "s", subset="test")


# ----------------------------------------------------------------------------- HMDB51


def write_hmdb(split_dir: Path, root: Path) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    lists = {
        "brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1", "Blonde_brush_hair_f_nm_np2_le_goo_0.avi 2",
                       "Brushing_hair_u_cm_np1_fr_goo_0.avi 0"],
        "cartwheel": ["Acrobatic_cartwheel_f_cm_np1_le_med_0.avi 2", "Cartwheel_f_nm_np1_ri_goo_1.avi 1",
                      "Cartwheel_f_nm_np1_ri_goo_2.avi 1"],
    }
    for cls, lines in lists.items():
        (split_dir / f"{cls}_test_split1.txt").write_text("".join(ln + " \n" for ln in lines))
        (split_dir / f"{cls}_test_split2.txt").write_text(lines[0].split()[0] + " 2\n")
        for ln in lines:
            touch(root / cls / ln.split()[0])


def test_hmdb51_splits(tmp_path):
    write_hmdb(tmp_path / "testTrainMulti_7030_splits", tmp_path / "hmdb51")
    kw = dict(root=tmp_path / "hmdb51")
    train = load_manifest(tmp_path / "testTrainMulti_7030_splits", **kw)
    assert train.classes == ["brush_hair", "cartwheel"]
    assert [Path(p).name for p in train.paths] == [
        "April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Cartwheel_f_nm_np1_ri_goo_1.avi", "Cartwheel_f_nm_np1_ri_goo_2.avi"]
    assert train.labels == [0, 1, 1]
    assert train.paths[0] == str(tmp_path / "hmdb51" / "brush_hair" / "April_09_brush_hair_u_nm_np1_ba_goo_0.avi")
    test = load_manifest(tmp_path / "testTrainMulti_7030_splits", format="hmdb51", subset="test", **kw)
    assert test.labels == [0, 1] and len(test) == 2  # the '0' (unused) line is in neither
    test2 = load_manifest(tmp_path / "testTrainMulti_7030_splits", split=2, subset="test", **kw)
    assert test2.labels == [0, 1]
    with pytest.raises(ManifestError, match="no videos"):
        load_manifest(tmp_path / "testTrainMulti_7030_splits", split=2, subset="train", **kw)
    with pytest.raises(ManifestError, match="_test_split3.txt"):
        load_manifest(tmp_path / "testTrainMulti_7030_splits", format="hmdb51", split=3, **kw)


# ----------------------------------------------------------------------------- Kinetics


def test_kinetics_csv_lookup_places(tmp_path):
    root = tmp_path / "k400"
    csv = tmp_path / "validate.csv"
    csv.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "air drumming,abc123,10,20,val\n"      # root/<label with _>/
        "abseiling,xyz789,0,10,val\n"          # root/
        "abseiling,qqq000,5,15,val\n"          # root/<split>/<label>/
        "zumba,zzz111,100,110,val\n"           # root/<label>/
    )
    touch(root / "air_drumming" / "abc123_000010_000020.mp4", root / "xyz789_000000_000010.mp4",
          root / "val" / "abseiling" / "qqq000_000005_000015.mp4", root / "zumba" / "zzz111_000100_000110.mp4")
    m = load_manifest(csv, root=root)  # auto: a CSV with youtube_id
    assert m.paths == [str(root / "air_drumming" / "abc123_000010_000020.mp4"), str(root / "xyz789_000000_000010.mp4"),
                       str(root / "val" / "abseiling" / "qqq000_000005_000015.mp4"),
                       str(root / "zumba" / "zzz111_000100_000110.mp4")]
    assert m.classes == ["abseiling", "air drumming", "zumba"]
    assert m.labels == [1, 0, 0, 2]
    assert m.columns["youtube_id"] == ["abc123", "xyz789", "qqq000", "zzz111"]
    (root / "zumba" / "zzz111_000100_000110.mp4").unlink()
    with pytest.raises(ManifestError, match="1 of 4 videos are missing"):
        load_manifest(csv, format="kinetics", root=root)
    assert len(load_manifest(csv, root=root, check_files=False)) == 4


def test_kinetics_unlabelled_test_csv(tmp_path):
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\nabc,1,11,test\n")
    touch(tmp_path / "abc_000001_000011.mp4")
    m = load_manifest(tmp_path / "test.csv")
    assert m.labels == [-1] and m.paths == [str(tmp_path / "abc_000001_000011.mp4")]


# ----------------------------------------------------------------------------- folders


def test_folder_of_videos(tmp_path):
    touch(tmp_path / "walk" / "a.mp4", tmp_path / "walk" / "deep" / "b.MKV", tmp_path / "jump" / "c.webm",
          tmp_path / "loose.avi", tmp_path / "jump" / "notes.txt", tmp_path / "jump" / "d.mov")
    m = load_manifest(tmp_path)
    names = [Path(p).name for p in m.paths]
    assert sorted(names) == ["a.mp4", "b.MKV", "c.webm", "d.mov", "loose.avi"]
    assert m.classes == ["jump", "walk"]
    by_name = dict(zip(names, m.labels))
    assert by_name == {"a.mp4": 1, "b.MKV": 1, "c.webm": 0, "d.mov": 0, "loose.avi": -1}


def test_folder_of_frame_folders(tmp_path):
    touch(tmp_path / "walk" / "v1" / "00001.jpg", tmp_path / "walk" / "v1" / "00002.jpg",
          tmp_path / "jump" / "v2" / "00001.png")
    m = load_manifest(tmp_path, format="folder")
    assert m.paths == [str(tmp_path / "jump" / "v2"), str(tmp_path / "walk" / "v1")]
    assert m.labels == [0, 1] and m.classes == ["jump", "walk"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no videos"):
        load_manifest(tmp_path / "empty")


def test_auto_detection(tmp_path):
    write_ucf(tmp_path / "u", tmp_path / "u")
    write_hmdb(tmp_path / "h", tmp_path / "h")
    assert load_manifest(tmp_path / "u").classes == UCF_CLASSES
    assert load_manifest(tmp_path / "h").classes == ["brush_hair", "cartwheel"]
    with pytest.raises(ManifestError, match="needs a folder"):
        load_manifest(tmp_path / "u" / "classInd.txt", format="ucf101")


def test_manifest_length_checks():
    with pytest.raises(ManifestError, match="2 paths but 1 labels"):
        Manifest(["a", "b"], [0], source="x")
