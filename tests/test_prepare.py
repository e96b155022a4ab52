"""``vidssl data prepare``: re-encoding to a short side, frame rate and keyframe interval;
sharded, resumable, corrupt videos reported and skipped, a manifest of the new files."""
from __future__ import annotations

import av
import numpy as np
import pytest

from vidssl.cli import main
from vidssl.data.manifests import load_manifest, write_manifest
from vidssl.data.prepare import PrepareOptions, prepare_manifest, target_size
from vidssl.data.video import probe, read_frames
from vidssl.errors import ManifestError


def test_target_size_keeps_the_aspect_even_and_never_upscales():
    assert target_size(320, 240, 256) == (320, 240)
    assert target_size(640, 360, 256) == (456, 256)
    assert target_size(1280, 720, 320) == (568, 320)
    assert target_size(360, 640, 256) == (256, 456)  # portrait
    assert target_size(333, 201, None) == (334, 202)  # even sizes for yuv420p


@pytest.fixture()
def source(tmp_path, make_video):
    vids = [make_video(f"src/a/v{i}.mp4", frames=20, size=(48, 64), fps=25) for i in range(3)]
    bad = tmp_path / "src" / "b" / "broken.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"garbage" * 30)
    write_manifest(tmp_path / "src" / "m.csv", [str(v) for v in vids] + [str(bad)], ["x", "y", "x", "y"],
                   extra=["1", "2", "3", "4"])
    return tmp_path / "src" / "m.csv"


def test_prepared_videos_have_the_asked_size_rate_and_keyframes(tmp_path, source, frame_level):
    m = load_manifest(source)
    stats = prepare_manifest(m, tmp_path / "out", PrepareOptions(short_side=24, fps=12.5, keyint=4),
                             progress=False)
    assert stats["done"] == 3 and [p for p, _ in stats["failed"]] == [m.paths[3]]
    new = load_manifest(stats["manifest"])
    assert len(new) == 3 and new.raw_labels() == ["x", "y", "x"] and new.columns["extra"] == ["1", "2", "3"]
    assert [p.endswith(f"a/v{i}.mp4") for i, p in enumerate(new.paths)] == [True] * 3
    info = probe(new.paths[0])
    assert (info.width, info.height, info.fps, info.num_frames) == (32, 24, 12.5, 10)
    with av.open(new.paths[0]) as c:
        assert [i for i, f in enumerate(c.decode(video=0)) if f.key_frame] == [0, 4, 8]
    # output frame k is source frame 2k (nearest in time at half the rate): its grey level says so
    levels = read_frames(new.paths[0], range(10)).mean(axis=(1, 2, 3))
    expected = np.array([frame_level(2 * k, 20) for k in range(10)])
    assert np.abs(levels - expected).max() < 4


def test_shards_and_resume(tmp_path, source, capsys):
    out = tmp_path / "out"
    assert main(["data", "prepare", str(source), "--out", str(out), "--shard", "0/2", "--short-side", "24",
                 "--quiet"]) == 0  # shard 0: videos 0 and 2
    assert "prepared 2 videos" in capsys.readouterr().out
    assert main(["data", "prepare", str(source), "--out", str(out), "--shard", "1/2", "--short-side", "24",
                 "--quiet"]) == 1  # shard 1: video 1 and the broken one
    text = capsys.readouterr().out
    assert "prepared 1 videos" in text and "FAILED" in text and "broken.mp4" in text
    assert "manifest of 3 videos" in text
    before = (out / "a" / "v0.mp4").stat().st_mtime_ns
    assert main(["data", "prepare", str(source), "--out", str(out), "--short-side", "24", "--quiet"]) == 1
    assert "3 already done" in capsys.readouterr().out
    assert (out / "a" / "v0.mp4").stat().st_mtime_ns == before


def test_bad_options():
    with pytest.raises(ManifestError, match="--keyint"):
        PrepareOptions(keyint=0)
    with pytest.raises(ManifestError, match="--short-side"):
        PrepareOptions(short_side=4)
