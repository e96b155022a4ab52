"""`vidssl idt extract / fit / encode` end to end on tiny rendered videos."""
import csv

import numpy as np
import pytest

from vidssl.cli import main
from vidssl.errors import BoxFileError, ShardError
from vidssl.idt.camera import box_mask, load_boxes
from vidssl.idt.extract import descriptor_file, parse_shard, shard_indices


def write_video(path, frames):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def moving_texture(seed, n=20, h=48, w=64, vx=2):
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (h, w * 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex[::4, ::4], 4, 0), 4, 1)[:h]
    out = []
    for t in range(n):
        g = tex[:, t * vx: t * vx + w].copy()
        g[16:32, 20 + t: 36 + t] = 255 - g[16:32, 20 + t: 36 + t]  # a block moving on its own
        out.append(np.repeat(g[..., None], 3, 2))
    return np.stack(out)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("idt")
    rows = []
    for i in range(3):
        write_video(root / f"v{i}.mp4", moving_texture(i, vx=1 + i))
        rows.append((f"v{i}.mp4", f"c{i % 2}"))
    (root / "bad.mp4").write_bytes(b"not a video at all")
    rows.append(("bad.mp4", "c0"))
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return root


def test_extract_fit_encode(dataset, capsys):
    m, out = str(dataset / "m.csv"), str(dataset / "desc")
    assert main(["idt", "extract", m, "--out", out, "--shard", "1/2", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "extracted 1 videos" in text and "1 failed" in text and "bad.mp4" in text
    assert main(["idt", "extract", m, "--out", out, "--quiet", "--max-short-side", "40", "--flow", "dis"]) == 0
    text = capsys.readouterr().out
    assert "1 already done" in text and "extracted 2 videos" in text and "1 failed" in text  # resumed; bad one still failing
    files = sorted((dataset / "desc").glob("*.npz"))
    assert len(files) == 3 and not list((dataset / "desc").glob("*.tmp*"))
    with np.load(files[0]) as z:
        assert z["rows"].dtype == np.float32 and z["rows"].shape[1] == 436 and len(z["rows"]) > 0
    model = str(dataset / "fv.npz")
    assert main(["idt", "fit", m, "--descriptors", out, "--model", model, "--components", "2",
                 "--sketch-dim", "32"]) == 0
    enc = str(dataset / "enc.npz")
    assert main(["idt", "encode", m, "--descriptors", out, "--model", model, "--out", enc, "--quiet"]) == 0
    with np.load(enc) as z:
        assert z["features"].shape == (4, 32) and z["features"].dtype == np.float32
        assert list(z["missing"]) == [False, False, False, True]
        assert z["paths"][0].endswith("v0.mp4")
        assert np.all(np.abs(z["features"][:3]).sum(1) > 0) and np.all(z["features"][3] == 0)


def test_shards_and_names(tmp_path):
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ShardError):
            parse_shard(bad)
    parts = [shard_indices(10, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == list(range(10))
    assert descriptor_file(tmp_path, "/a/x.mp4") != descriptor_file(tmp_path, "/b/x.mp4")


def test_boxes(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("0 1 2 5 6 0.9\n0 10 10 12 12 0.5\n3 0 0 1 1 0.8 2 2 3 3 0.1\n")
    b = load_boxes(p)
    assert b[0].shape == (2, 5) and b[3].shape == (2, 5)
    m = box_mask((8, 14), b[0])
    assert m[2:7, 1:6].sum() == 0 and m.sum() == 8 * 14 - 25 - 0  # second box is outside rows 0..7
    p.write_text("0 1 2 3\n")
    with pytest.raises(BoxFileError, match="b.txt:1"):
        load_boxes(p)
