"""vidssl.fileio: atomic writes (temporary file beside the target, fsync, os.replace)."""
from __future__ import annotations

import os

import pytest

from vidssl.fileio import atomic_write, atomic_write_bytes, atomic_write_text, temp_path


def test_atomic_write_writes_the_content(tmp_path):
    target = tmp_path / "out.bin"
    got = atomic_write(target, lambda f: f.write(b"hello"))
    assert got == target and target.read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old content")
    atomic_write(target, lambda f: f.write(b"new"), fsync=False)
    assert target.read_bytes() == b"new"


def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old \x00 bytes")

    def write(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, write)
    assert target.read_bytes() == b"old \x00 bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_failing_write_of_a_new_file_leaves_nothing(tmp_path):
    target = tmp_path / "new.txt"
    with pytest.raises(ValueError):
        atomic_write(target, lambda f: (_ for _ in ()).throw(ValueError("no")))
    assert list(tmp_path.iterdir()) == []


def test_the_parent_folder_is_created(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(target, "x")
    assert target.read_text() == "x"


def test_temp_name_matches_the_stale_temp_glob(tmp_path):
    # the trainer removes ``.<name>.*.tmp`` left by a killed write: keep the naming
    target = tmp_path / "last.pt"
    tmp = temp_path(target)
    assert tmp.parent == tmp_path and tmp.name == f".last.pt.{os.getpid()}.tmp"
    tmp.write_bytes(b"")
    assert list(tmp_path.glob(f".{target.name}.*.tmp")) == [tmp]


def test_text_and_bytes_round_trip(tmp_path):
    text = "päth,label\r\nvideo ü.mp4,3\n"
    atomic_write_text(tmp_path / "t.csv", text)
    assert (tmp_path / "t.csv").read_bytes() == text.encode("utf-8")  # no newline translation
    atomic_write_text(tmp_path / "l.txt", "é", encoding="latin-1")
    assert (tmp_path / "l.txt").read_bytes() == b"\xe9"
    data = bytes(range(256))
    assert atomic_write_bytes(tmp_path / "d.bin", data) == tmp_path / "d.bin"
    assert (tmp_path / "d.bin").read_bytes() == data
