"""Decoding: PyAV against frame folders, seeking against decoding from the start, bad files."""
from __future__ import annotations

import pickle

import av
import cv2
import numpy as np
import pytest

from vidssl.data import video
from vidssl.data.video import VideoInfo, decode_all, probe, read_frames
from vidssl.errors import VideoDecodeError

T, H, W = 24, 32, 48


def make_frames(t: int = T, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Smooth, moving content (so that lossy codecs stay close) plus a per-frame marker."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    phase = rng.uniform(0, 2 * np.pi, 3)
    for i in range(t):
        for c in range(3):
            out[i, :, :, c] = (127 + 100 * np.sin((xx + 2 * i) / 7.0 + phase[c]) * np.cos(yy / 9.0)).astype(np.uint8)
        out[i, 4:12, 4:12] = (i * 9) % 256  # a frame-number marker block
    return out


def write_video(path, frames: np.ndarray, codec: str, fps: int = 25, pix_fmt: str = "yuv420p",
                options: dict | None = None, bit_rate: int | None = None) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if bit_rate:
            s.bit_rate = bit_rate
        if options:
            s.options = options
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def write_frame_folder(folder, frames: np.ndarray, fps: float | None = None, ext: str = "png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:05d}.{ext}"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    if fps is not None:
        (folder / "fps.txt").write_text(f"{fps}\n")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Lossless (ffv1/mkv, png/avi), lossy (h264/mp4 with B-frames, mpeg4/avi) and a frame folder."""
    d = tmp_path_factory.mktemp("videos")
    frames = make_frames()
    paths = {
        "ffv1": d / "a.mkv", "png": d / "b.avi", "h264": d / "c.mp4", "mpeg4": d / "d.avi",
    }
    write_video(paths["ffv1"], frames, "ffv1", pix_fmt="bgr0", options={"g": "5"})
    write_video(paths["png"], frames, "png", pix_fmt="rgb24")
    write_video(paths["h264"], frames, "libx264", options={"crf": "12", "g": "6", "bf": "2"})
    write_video(paths["mpeg4"], frames, "mpeg4", options={"g": "7"}, bit_rate=4_000_000)
    paths["frames"] = d / "frames"
    write_frame_folder(paths["frames"], frames, fps=12.5)
    return frames, paths


def full_decode(path) -> np.ndarray:
    """Reference: every frame, decoded from the start with plain PyAV."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.parametrize("kind", ["ffv1", "png"])
def test_lossless_video_equals_frame_folder_exactly(clips, kind):
    frames, paths = clips
    rng = np.random.default_rng(1)
    for _ in range(3):
        idx = rng.integers(0, T, size=9)  # any order, with repeats
        a = read_frames(paths[kind], idx)
        b = read_frames(paths["frames"], idx, backend="frames")
        assert a.dtype == np.uint8 and a.shape == (9, H, W, 3)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, frames[idx])


@pytest.mark.parametrize("kind", ["h264", "mpeg4"])
def test_lossy_video_close_to_frame_folder(clips, kind):
    frames, paths = clips
    idx = [20, 3, 3, 11, 0, 23]
    a = read_frames(paths[kind], idx).astype(np.float64)
    b = read_frames(paths["frames"], idx, backend="frames").astype(np.float64)
    err = np.abs(a - b).mean(axis=(1, 2, 3))
    assert (err < 6).all(), err
    # each frame is closer to its own reference than to the neighbouring frame
    for k, i in enumerate(idx):
        other = frames[(i + 1) % T].astype(np.float64)
        assert np.abs(a[k] - b[k]).mean() < np.abs(a[k] - other).mean()


@pytest.mark.parametrize("kind", ["ffv1", "png", "h264", "mpeg4"])
def test_seeking_equals_decoding_from_start(clips, kind, monkeypatch):
    _, paths = clips
    ref = full_decode(paths[kind])
    assert len(ref) == T
    starts = []
    orig = video._decode_forward

    def spy(*args, **kw):
        out = orig(*args, **kw)
        starts.append((kw["from_start"], out is None))
        return out

    monkeypatch.setattr(video, "_decode_forward", spy)
    for first in [0, 1, 5, 6, 7, 12, 17, 22, 23]:
        idx = [first, min(first + 1, T - 1), T - 1, first]
        np.testing.assert_array_equal(read_frames(paths[kind], idx), ref[idx])
    # past frame 0 the reader seeks (not from the start) and trusts the landing point
    assert starts[0] == (True, False)
    assert all(s == (False, False) for s in starts[1:])


def test_untrusted_seek_falls_back_to_decoding_from_start(clips, monkeypatch):
    _, paths = clips
    ref = full_decode(paths["h264"])
    orig = video._decode_forward
    calls = []

    def no_trust(*args, **kw):
        calls.append(kw["from_start"])
        return None if not kw["from_start"] else orig(*args, **kw)

    monkeypatch.setattr(video, "_decode_forward", no_trust)
    np.testing.assert_array_equal(read_frames(paths["h264"], [15, 9]), ref[[15, 9]])
    assert calls == [False, True]


def test_one_decode_pass_per_call(clips, monkeypatch):
    _, paths = clips
    opened = []
    orig = av.open

    def counting_open(*a, **k):
        opened.append(a[0])
        return orig(*a, **k)

    monkeypatch.setattr(av, "open", counting_open)
    out = read_frames(paths["h264"], [2, 3, 4, 14, 15, 16, 20, 21, 22])  # three clips
    assert out.shape[0] == 9 and len(opened) == 1


def test_probe(clips, tmp_path):
    _, paths = clips
    for kind in ("ffv1", "png", "h264", "mpeg4"):  # mkv states no frame count: counted by decoding
        assert probe(paths[kind]) == VideoInfo(T, 25.0, W, H)
    assert probe(paths["frames"], backend="frames") == VideoInfo(T, 12.5, W, H)
    plain = tmp_path / "plain"
    write_frame_folder(plain, make_frames(t=3), ext="jpg")
    assert probe(plain, backend="frames") == VideoInfo(3, 30.0, W, H)
    assert read_frames(plain, [2, 0], backend="frames").shape == (2, H, W, 3)


def test_probe_is_cached_until_the_file_changes(tmp_path, monkeypatch):
    p = tmp_path / "v.mkv"
    write_video(p, make_frames(t=6), "ffv1", pix_fmt="bgr0")
    calls = []
    orig = video._pyav_probe
    monkeypatch.setattr(video, "_pyav_probe", lambda path: calls.append(path) or orig(path))
    video._probe_cached.cache_clear()
    assert probe(p).num_frames == 6 and probe(str(p)).num_frames == 6
    assert len(calls) == 1
    write_video(p, make_frames(t=9), "ffv1", pix_fmt="bgr0")
    assert probe(p).num_frames == 9 and len(calls) == 2


def test_decode_all_counts_frames(clips):
    _, paths = clips
    assert decode_all(paths["h264"]) == T
    assert decode_all(paths["frames"], backend="frames") == T


def bad_files(tmp, good) -> dict:
    data = good.read_bytes()
    out = {}
    out["zero"] = tmp / "zero.mp4"
    out["zero"].write_bytes(b"")
    out["text"] = tmp / "text.mp4"
    out["text"].write_text("this is not a video\n" * 40)
    out["truncated_mp4"] = tmp / "trunc.mp4"  # the moov index is lost: unreadable
    out["truncated_mp4"].write_bytes(data[: len(data) // 2])
    out["missing"] = tmp / "missing.mp4"
    return out


@pytest.mark.parametrize("name", ["zero", "text", "truncated_mp4", "missing"])
def test_bad_files_raise_video_decode_error(clips, tmp_path, name):
    _, paths = clips
    p = bad_files(tmp_path, paths["h264"])[name]
    for call in (lambda: probe(p), lambda: read_frames(p, [0, 5]), lambda: decode_all(p)):
        with pytest.raises(VideoDecodeError) as e:
            call()
        assert e.value.path.endswith(p.name) and e.value.reason
        assert p.name in str(e.value)


def test_truncated_mkv_and_frames_past_the_end(clips, tmp_path):
    _, paths = clips
    data = paths["ffv1"].read_bytes()
    p = tmp_path / "cut.mkv"
    p.write_bytes(data[: len(data) // 2])
    n = probe(p).num_frames
    assert 0 < n < T  # counted by decoding what is there
    with pytest.raises(VideoDecodeError, match="ends after"):
        read_frames(p, [n + 2])
    with pytest.raises(VideoDecodeError, match="ends after"):
        read_frames(paths["h264"], [T])
    with pytest.raises(VideoDecodeError, match="holds 24 frames"):
        read_frames(paths["frames"], [T], backend="frames")


def test_corrupt_packets(clips, tmp_path):
    _, paths = clips
    data = bytearray(paths["h264"].read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 1500):
        data[i] = (data[i] * 7 + 3) % 256
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(bytes(data))
    with pytest.raises(VideoDecodeError, match="decoding failed"):
        decode_all(p)


def test_frame_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDecodeError, match="no frame images"):
        probe(tmp_path / "empty", backend="frames")
    with pytest.raises(VideoDecodeError, match="does not exist"):
        read_frames(tmp_path / "nothere", [0], backend="frames")
    bad = tmp_path / "bad"
    write_frame_folder(bad, make_frames(t=2))
    (bad / "00003.png").write_bytes(b"not a png")
    with pytest.raises(VideoDecodeError, match="00003.png"):
        read_frames(bad, [2], backend="frames")
    (bad / "fps.txt").write_text("fast")
    with pytest.raises(VideoDecodeError, match="fps.txt"):
        probe(bad, backend="frames")
    with pytest.raises(VideoDecodeError, match="is a folder"):
        read_frames(bad, [0])


def test_bad_arguments(clips):
    _, paths = clips
    with pytest.raises(ValueError, match="unknown video backend"):
        read_frames(paths["h264"], [0], backend="decord")
    with pytest.raises(ValueError, match="negative frame numbers"):
        read_frames(paths["h264"], [3, -1])
    assert read_frames(paths["h264"], []).shape == (0, H, W, 3)


def test_error_is_picklable():
    e = pickle.loads(pickle.dumps(VideoDecodeError("/x/y.mp4", "empty file")))
    assert (e.path, e.reason) == ("/x/y.mp4", "empty file") and "y.mp4" in str(e)
    assert isinstance(e, ValueError)
