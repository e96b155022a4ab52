"""Multi-label manifests: label sets in a ``labels`` column (names, integers, empty), the
errors for bad entries, the Manifest operations that carry them, the built-in data made
multi-label, and the ``multi_hot`` targets of the dataset and its batches."""
import csv

import numpy as np
import pytest
import torch

from vidssl.config import DataConfig
from vidssl.data.datasets import VideoDataset, collate
from vidssl.data.label_groups import write_multilabel_manifest
from vidssl.data.manifests import Manifest, load_manifest, write_manifest
from vidssl.data.multilabel import multi_hot, parse_label_sets
from vidssl.errors import ManifestError


def _csv(tmp_path, header, rows, name="m.csv"):
    for i in range(len(rows)):
        (tmp_path / f"v{i}.mp4").touch()
    path = tmp_path / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, r in enumerate(rows):
            w.writerow([f"v{i}.mp4", *r])
    return path


def test_names_are_numbered_in_sorted_order_and_sets_are_sorted_without_repeats():
    sets, classes = parse_label_sets(["sit;drink", "", " drink ", "walk;sit;sit"])
    assert classes == ["drink", "sit", "walk"]
    assert sets == [[0, 1], [], [0], [1, 2]]


def test_integers_are_the_labels():
    sets, classes = parse_label_sets(["3;1", "", "0", "+2"])
    assert (sets, classes) == ([[1, 3], [], [0], [2]], [])


def test_an_explicit_class_list_numbers_the_names_and_names_its_unknown_ones():
    sets, classes = parse_label_sets(["b;a", "c"], classes=["c", "b", "a"])
    assert (sets, classes) == ([[1, 2], [0]], ["c", "b", "a"])
    with pytest.raises(ManifestError, match=r"2 unknown class names, e\.g\. x, y"):
        parse_label_sets(["a;x", "y", "a"], "m.csv", classes=["a"])


@pytest.mark.parametrize("values, message", [
    (["a;;b", "a", "b;"], r"m\.csv: 2 malformed label sets .*entry 1: 'a;;b', entry 3: 'b;'"),
    (["1;-2", "3"], r"negative labels \[-2\]"),
    (["sit;3", "drink", "4"], r"mix integers and class names; 2 entries .*entry 1: 'sit;3', entry 3: '4'"),
])
def test_bad_entries_are_one_error_naming_the_first_offenders(values, message):
    with pytest.raises(ManifestError, match=message):
        parse_label_sets(values, "m.csv")


def test_a_labels_column_is_read_as_label_sets(tmp_path):
    path = _csv(tmp_path, ["path", "labels", "scene"], [["sit;drink", "a"], ["", "b"], ["walk", "a"]])
    m = load_manifest(path)
    assert m.multi_label and m.label_column == "labels"
    assert m.label_sets == [[0, 1], [], [2]] and m.classes == ["drink", "sit", "walk"]
    assert m.labels == [-1, -1, -1] and m.num_classes == 3 and m.columns == {"scene": ["a", "b", "a"]}
    assert m.raw_labels() == ["drink;sit", "", "walk"]
    sub = m.subset([2, 0])
    assert sub.label_sets == [[2], [0, 1]] and sub.classes == m.classes


def test_label_column_names_a_column_of_label_sets(tmp_path):
    path = _csv(tmp_path, ["path", "label", "actions"], [["0", "1;4"], ["1", "2"]])
    single = load_manifest(path)
    assert not single.multi_label and single.labels == [0, 1]
    m = load_manifest(path, label_column="actions")  # a ';' makes it a column of label sets
    assert m.label_sets == [[1, 4], [2]] and m.classes == [] and m.num_classes == 5
    back = m.relabel("label")
    assert not back.multi_label and back.labels == [0, 1] and back.columns["actions"] == ["1;4", "2"]
    assert single.relabel("actions").label_sets == [[1, 4], [2]]


def test_bad_label_sets_in_a_csv_name_the_file(tmp_path):
    path = _csv(tmp_path, ["path", "labels"], [["a;"], ["b"]])
    with pytest.raises(ManifestError, match=r"m\.csv column 'labels': 1 malformed label sets"):
        load_manifest(path)


def test_write_manifest_round_trips_label_sets(tmp_path):
    for i in range(3):
        (tmp_path / f"v{i}.mp4").touch()
    out = write_manifest(tmp_path / "out.csv", [tmp_path / f"v{i}.mp4" for i in range(3)],
                         label_sets=[["sit", "drink"], [], ["walk"]], scene=["a", "b", "c"])
    assert out.read_text().splitlines()[:2] == ["path,labels,scene", "v0.mp4,sit;drink,a"]
    m = load_manifest(out)
    assert m.label_sets == [[0, 1], [], [2]] and m.columns == {"scene": ["a", "b", "c"]}


def test_with_classes_renumbers_and_refuses_unknown_names():
    m = Manifest(["a", "b"], [-1, -1], ["drink", "sit"], label_sets=[[1], [0, 1]])
    out = m.with_classes(["sit", "walk", "drink"])
    assert out.label_sets == [[0], [0, 2]] and out.classes == ["sit", "walk", "drink"]
    with pytest.raises(ManifestError, match="1 unknown class names, e.g. drink"):
        m.with_classes(["sit"])
    ints = Manifest(["a", "b"], [-1, -1], [], label_sets=[[2], []])
    assert ints.with_classes(["0", "1", "2", "3"]).label_sets == [[2], []]


def test_multi_hot_targets():
    assert multi_hot([[0, 2], [], [1]], 3).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(ManifestError, match="outside the 2 classes"):
        multi_hot([[2]], 2)


def test_the_builtin_data_made_multi_label_and_its_batches(synth_dir, tmp_path):
    src = load_manifest(synth_dir / "train.csv")
    out = write_multilabel_manifest(synth_dir / "train.csv", tmp_path / "train_ml.csv")
    m = load_manifest(out)
    assert m.multi_label and m.paths == src.paths
    assert m.classes == sorted(set(src.classes) | set(src.columns["appearance"]))
    for i in range(len(m)):  # two label groups: the motion class and the scene
        names = {m.classes[y] for y in m.label_sets[i]}
        assert names == {src.classes[src.labels[i]], src.columns["appearance"][i]}
    cfg = DataConfig(num_frames=4, crop_size=24, test_short_side=28, test_clips=1)
    ds = VideoDataset(m, cfg, train=False)
    items = [ds[(0, 0)], ds[(1, 0)]]
    assert items[0]["label"] == -1 and items[0]["multi_hot"].dtype == torch.float32
    batch = collate(items)
    want = torch.from_numpy(multi_hot(m.label_sets[:2], m.num_classes))
    assert torch.equal(batch["multi_hot"], want) and batch["multi_hot"].shape == (2, m.num_classes)
    single = VideoDataset(src, cfg, train=False)
    assert "multi_hot" not in collate([single[(0, 0)]])
    with pytest.raises(ManifestError, match="no column 'motion'"):
        write_multilabel_manifest(src, tmp_path / "x.csv", columns=("label", "motion"))
