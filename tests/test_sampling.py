"""Clip samplers: frame indices against hand-computed values and an exact reference
(Fractions), t_max, determinism, short videos, test-clip spacing, segments, two-rate."""
from fractions import Fraction

import numpy as np
import pytest

from vidssl.config import AugmentConfig, DataConfig
from vidssl.data.sampling import test_clip_indices, train_clip_indices
from vidssl.errors import SamplingError


def cfg_(**kw):
    aug = kw.pop("augment", {})
    return DataConfig(augment=AugmentConfig(**aug), **kw)


def starts_of(views):
    return np.array([v[0][0] for v in views])


# ----------------------------------------------------------------------------- reference


def ref_clip(start, n, stride, native_fps, target_fps, num_frames, short_rule=None):
    """Slow exact reference: native index of target-rate position p is the nearest
    native frame to time p / F (halves round up), computed with Fractions."""
    ratio = Fraction(native_fps) / Fraction(target_fps)
    out = []
    for k in range(n):
        x = (Fraction(start) + k * Fraction(stride)) * ratio
        i = int(x + Fraction(1, 2)) if x >= 0 else 0  # floor(x + 1/2)
        if short_rule == "loop":
            i %= num_frames
        else:
            i = min(i, num_frames - 1)
        out.append(i)
    return out


def ref_test_clips(num_frames, native_fps, target_fps, T, tau, num_clips, extra=0):
    """Starts at (i + 1/2) / N of [0, M - span] target-rate frames."""
    M = Fraction(num_frames) * Fraction(target_fps) / Fraction(native_fps)
    free = M - (T + extra) * tau
    return [ref_clip((Fraction(2 * i + 1, 2 * num_clips)) * free, T + extra, tau, native_fps, target_fps, num_frames)
            for i in range(num_clips)]


# ----------------------------------------------------------------------------- hand-computed cases


@pytest.mark.parametrize("num_frames, fps, target, T, tau, num_clips, expected", [
    # the clip fills the video exactly: start 0 (large-scale study default 8 x 8 from 64 frames)
    (64, 30.0, None, 8, 8, 1, [[0, 8, 16, 24, 32, 40, 48, 56]]),
    # 30 -> 15 fps: every target frame is 2 native frames; M = 16 = span
    (32, 30.0, 15.0, 4, 4, 1, [[0, 8, 16, 24]]),
    # 60 frames at 30 -> 15 fps, 3 clips: M = 30, span 8, starts 22 * (1, 3, 5) / 6
    (60, 30.0, 15.0, 4, 2, 3, [[7, 11, 15, 19], [22, 26, 30, 34], [37, 41, 45, 49]]),
    # 25 -> 30 fps (ratio 5/6): M = 60, span 8, starts 13 and 39; 12.5 and 32.5 round up
    (50, 25.0, 30.0, 4, 2, 2, [[11, 13, 14, 16], [33, 34, 36, 38]]),
    # 25 -> 30 fps, one clip at the centre: start 26
    (50, 25.0, 30.0, 4, 2, 1, [[22, 23, 25, 27]]),
    # native rate, 100 frames, T = 4, tau = 5: free = 80, starts 20, 60
    (100, 24.0, None, 4, 5, 2, [[20, 25, 30, 35], [60, 65, 70, 75]]),
])
def test_test_clips_hand_computed(num_frames, fps, target, T, tau, num_clips, expected):
    cfg = cfg_(num_frames=T, stride=tau, fps=target)
    got = test_clip_indices(num_frames, fps, cfg, num_clips)
    assert [[list(p) for p in clip] for clip in got] == [[e] for e in expected]
    assert got[0][0].dtype == np.int64
    assert [list(c[0]) for c in got] == ref_test_clips(num_frames, fps, target or fps, T, tau, num_clips)


@pytest.mark.parametrize("num_frames, fps, target, T, tau, num_clips", [
    (300, 29.97, 30.0, 8, 8, 10), (91, 30.0, 10.0, 4, 3, 7), (120, 24.0, 60.0, 16, 2, 5),
    (1000, 50.0, 25.0, 8, 8, 30), (77, 15.0, None, 3, 7, 4),
])
def test_test_clips_match_exact_reference(num_frames, fps, target, T, tau, num_clips):
    cfg = cfg_(num_frames=T, stride=tau, fps=target)
    got = [list(c[0]) for c in test_clip_indices(num_frames, fps, cfg, num_clips)]
    assert got == ref_test_clips(num_frames, fps, target or fps, T, tau, num_clips)
    assert got == [list(c[0]) for c in test_clip_indices(num_frames, fps, cfg, num_clips)]  # deterministic
    starts = [c[0] for c in got]
    assert starts == sorted(starts) and all(0 <= i < num_frames for c in got for i in c)


def test_test_clips_default_count_and_diff_extra_frame():
    cfg = cfg_(num_frames=4, stride=2, test_clips=3, modality="diff")
    got = test_clip_indices(100, 30.0, cfg)
    assert len(got) == 3 and all(len(c[0]) == 5 for c in got)
    assert [list(c[0]) for c in got] == ref_test_clips(100, 30.0, 30.0, 4, 2, 3, extra=1)


@pytest.mark.parametrize("num_frames, fps, target, T, tau", [
    (60, 30.0, 15.0, 4, 2), (50, 25.0, 30.0, 4, 2), (200, 30.0, None, 8, 4), (333, 29.97, 12.0, 5, 3),
])
def test_train_clips_follow_the_reference_from_their_start(num_frames, fps, target, T, tau):
    """Each training clip is the reference clip of some whole start in [0, floor(M - span)]."""
    cfg = cfg_(num_frames=T, stride=tau, fps=target, views=3)
    F = target or fps
    last = int(Fraction(num_frames) * Fraction(F) / Fraction(fps) - T * tau)
    rng = np.random.default_rng(0)
    clips_by_start = {s: ref_clip(s, T, tau, fps, F, num_frames) for s in range(last + 1)}
    seen = set()
    for _ in range(300):
        for view in train_clip_indices(rng, num_frames, fps, cfg):
            matches = [s for s, c in clips_by_start.items() if c == list(view[0])]
            assert matches, f"{list(view[0])} is no clip of a valid start"
            seen.update(matches)
    assert 0 in seen and last in seen  # both ends of the valid range are drawn


def test_train_hand_computed_integer_ratio():
    # 30 -> 15 fps, T = 4, tau = 2: indices are 2 s + (0, 4, 8, 12), s in 0..22
    cfg = cfg_(num_frames=4, stride=2, fps=15.0, views=2)
    rng = np.random.default_rng(1)
    for _ in range(50):
        for view in train_clip_indices(rng, 60, 30.0, cfg):
            s = view[0][0] // 2
            assert view[0][0] % 2 == 0 and 0 <= s <= 22
            assert list(view[0]) == [2 * s, 2 * s + 4, 2 * s + 8, 2 * s + 12]


# ----------------------------------------------------------------------------- t_max


def test_t_max_bounds_every_pair_of_starts():
    # 10 s at 30 fps, t_max = 1 s = 30 frames; 4 clips
    cfg = cfg_(num_frames=4, stride=2, views=4, t_max=1.0)
    rng = np.random.default_rng(0)
    spreads, all_starts = [], []
    for _ in range(1500):
        s = starts_of(train_clip_indices(rng, 300, 30.0, cfg))
        spreads.append(s.max() - s.min())
        all_starts.extend(s)
    assert max(spreads) == 30  # the window is used up to its edge, never beyond
    hist = np.bincount(np.array(all_starts) // 10, minlength=30)
    assert hist.min() > 0  # every part of the video is drawn


def test_t_max_window_reaches_both_ends_of_the_video():
    # 100 frames, span 8: valid starts 0..92; window 30 frames; the ends are the rarest starts
    cfg = cfg_(num_frames=4, stride=2, views=4, t_max=1.0)
    rng = np.random.default_rng(0)
    starts = np.concatenate([starts_of(train_clip_indices(rng, 100, 30.0, cfg)) for _ in range(3000)])
    assert starts.min() == 0 and starts.max() == 92
    assert set(starts.tolist()) == set(range(93))


def test_t_max_in_seconds_at_a_target_rate():
    # native 30 fps, target 15: t_max = 2 s = 30 target frames = 60 native frames
    cfg = cfg_(num_frames=4, stride=2, views=3, fps=15.0, t_max=2.0)
    rng = np.random.default_rng(3)
    spreads = []
    for _ in range(1000):
        s = starts_of(train_clip_indices(rng, 600, 30.0, cfg))
        spreads.append(s.max() - s.min())
    assert max(spreads) == 60


def test_t_max_zero_gives_clips_that_start_together():
    cfg = cfg_(num_frames=4, stride=2, views=3, t_max=0.0)
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(100):
        views = train_clip_indices(rng, 300, 30.0, cfg)
        assert all(np.array_equal(v[0], views[0][0]) for v in views)
        starts.append(views[0][0][0])
    assert len(set(starts)) > 50  # but the common start moves


def test_no_t_max_samples_globally():
    cfg = cfg_(num_frames=4, stride=2, views=2, t_max=None)
    rng = np.random.default_rng(0)
    spreads = [np.ptp(starts_of(train_clip_indices(rng, 300, 30.0, cfg))) for _ in range(500)]
    assert max(spreads) > 250


def test_t_max_larger_than_the_video_is_global():
    cfg = cfg_(num_frames=4, stride=2, views=2, t_max=600.0)
    rng = np.random.default_rng(0)
    starts = np.concatenate([starts_of(train_clip_indices(rng, 100, 30.0, cfg)) for _ in range(500)])
    assert starts.min() == 0 and starts.max() == 92


# ----------------------------------------------------------------------------- determinism, jitter


def test_determinism_with_a_fixed_rng():
    cfg = cfg_(num_frames=8, stride=4, views=3, augment={"fps_jitter": 0.3})
    a = train_clip_indices(np.random.default_rng(7), 500, 30.0, cfg)
    b = train_clip_indices(np.random.default_rng(7), 500, 30.0, cfg)
    c = train_clip_indices(np.random.default_rng(8), 500, 30.0, cfg)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_fps_jitter_scales_the_stride_per_clip():
    j, tau, T = 0.5, 8, 6
    cfg = cfg_(num_frames=T, stride=tau, views=2, augment={"fps_jitter": j})
    rng = np.random.default_rng(0)
    strides = []
    for _ in range(200):
        for v in train_clip_indices(rng, 2000, 30.0, cfg):
            d = np.diff(v[0])
            assert d.min() >= np.floor(tau * (1 - j)) and d.max() <= np.ceil(tau * (1 + j))
            strides.append((v[0][-1] - v[0][0]) / (T - 1))
    strides = np.array(strides)
    assert strides.min() < tau * 0.6 and strides.max() > tau * 1.4  # the whole range is used
    plain = train_clip_indices(rng, 2000, 30.0, cfg_(num_frames=T, stride=tau, views=2))
    assert all((np.diff(v[0]) == tau).all() for v in plain)


def test_test_clips_ignore_fps_jitter():
    cfg = cfg_(num_frames=4, stride=2, augment={"fps_jitter": 0.5})
    got = test_clip_indices(100, 30.0, cfg, 2)
    assert all((np.diff(c[0]) == 2).all() for c in got)


# ----------------------------------------------------------------------------- short videos


@pytest.mark.parametrize("rule, expected", [("loop", [0, 4, 8, 2]), ("pad", [0, 4, 8, 9])])
def test_short_video_rules(rule, expected):
    cfg = cfg_(num_frames=4, stride=4, views=3, short_video=rule)  # span 16 > 10 frames
    for views in (train_clip_indices(np.random.default_rng(0), 10, 30.0, cfg), test_clip_indices(10, 30.0, cfg, 2)):
        assert all(list(v[0]) == expected for v in views)


@pytest.mark.parametrize("rule, expected", [("loop", [0, 2, 3, 0]), ("pad", [0, 2, 3, 4])])
def test_short_video_at_a_target_rate(rule, expected):
    # 5 frames at 10 fps -> 20 fps: M = 10 < span 12; positions 0, 3, 6, 9 -> 0, 1.5, 3, 4.5
    cfg = cfg_(num_frames=4, stride=3, fps=20.0, short_video=rule)
    got = train_clip_indices(np.random.default_rng(0), 5, 10.0, cfg)
    assert list(got[0][0]) == expected
    assert list(got[0][0]) == ref_clip(0, 4, 3, 10, 20, 5, rule)


@pytest.mark.parametrize("sampler", ["clips", "segments", "two_rate"])
@pytest.mark.parametrize("rule", ["loop", "pad"])
def test_one_frame_video(sampler, rule):
    cfg = cfg_(num_frames=4, stride=2, views=2, sampler=sampler, segments=3, short_video=rule, fast_alpha=2)
    for views in (train_clip_indices(np.random.default_rng(0), 1, 30.0, cfg), test_clip_indices(1, 30.0, cfg, 3)):
        for v in views:
            assert all((p == 0).all() and len(p) > 0 for p in v)


def test_video_exactly_one_span_is_not_short():
    cfg = cfg_(num_frames=4, stride=4, views=2, short_video="loop")
    views = train_clip_indices(np.random.default_rng(0), 16, 30.0, cfg)
    assert all(list(v[0]) == [0, 4, 8, 12] for v in views)


# ----------------------------------------------------------------------------- segments


@pytest.mark.parametrize("num_frames, K", [(100, 8), (37, 5), (6, 8), (8, 8)])
def test_segments_training_one_random_frame_per_segment(num_frames, K):
    cfg = cfg_(sampler="segments", segments=K, views=2)
    rng = np.random.default_rng(0)
    seen = [set() for _ in range(K)]
    for _ in range(400):
        for v in train_clip_indices(rng, num_frames, 30.0, cfg):
            assert len(v) == 1 and len(v[0]) == K
            for k, i in enumerate(v[0]):
                lo = int(np.floor(k * num_frames / K))
                hi = max(lo, int(np.ceil((k + 1) * num_frames / K)) - 1)
                assert lo <= i <= hi
                seen[k].add(int(i))
    for k in range(K):  # every frame of a segment can be drawn
        lo, hi = int(np.floor(k * num_frames / K)), int(np.ceil((k + 1) * num_frames / K)) - 1
        assert seen[k] == set(range(lo, max(lo, hi) + 1))


def test_segments_test_centres_and_multiple_clips():
    cfg = cfg_(sampler="segments", segments=4)
    assert [list(c[0]) for c in test_clip_indices(40, 30.0, cfg, 1)] == [[5, 15, 25, 35]]
    # 2 clips: fractions 1/4 and 3/4 of each 10-frame segment
    assert [list(c[0]) for c in test_clip_indices(40, 30.0, cfg, 2)] == [[2, 12, 22, 32], [7, 17, 27, 37]]


def test_segments_with_diff_use_one_more_segment():
    cfg = cfg_(sampler="segments", segments=4, modality="diff")
    assert [list(c[0]) for c in test_clip_indices(50, 30.0, cfg, 1)] == [[5, 15, 25, 35, 45]]
    assert len(train_clip_indices(np.random.default_rng(0), 50, 30.0, cfg)[0][0]) == 5


# ----------------------------------------------------------------------------- two-rate


@pytest.mark.parametrize("alpha, T, tau, modality", [(4, 4, 8, "rgb"), (2, 3, 4, "rgb"), (4, 2, 8, "diff"), (8, 4, 16, "flow")])
def test_two_rate_pathways_cover_the_same_span(alpha, T, tau, modality):
    cfg = cfg_(sampler="two_rate", num_frames=T, stride=tau, fast_alpha=alpha, views=2, modality=modality)
    extra = 0 if modality == "rgb" else 1
    rng = np.random.default_rng(0)
    for views in (train_clip_indices(rng, 300, 30.0, cfg), test_clip_indices(300, 30.0, cfg, 3)):
        for slow, fast in views:
            assert len(slow) == T + extra and len(fast) == alpha * T + extra
            s = slow[0]
            assert fast[0] == s
            assert list(slow) == [s + k * tau for k in range(T + extra)]
            assert list(fast) == ref_clip(s, alpha * T + extra, Fraction(tau, alpha), 30, 30, 300)
            assert list(fast[::alpha]) == list(slow[: len(fast[::alpha])])


def test_two_rate_hand_computed():
    # 30 -> 15 fps, T = 2, tau = 4, alpha = 4: span 8 target frames = 16 native; M = 8
    cfg = cfg_(sampler="two_rate", num_frames=2, stride=4, fast_alpha=4, fps=15.0)
    slow, fast = test_clip_indices(16, 30.0, cfg, 1)[0]
    assert list(slow) == [0, 8] and list(fast) == [0, 2, 4, 6, 8, 10, 12, 14]


# ----------------------------------------------------------------------------- modality, errors


def test_diff_and_flow_need_one_more_frame():
    for modality, n in [("rgb", 8), ("diff", 9), ("flow", 9)]:
        cfg = cfg_(num_frames=8, stride=2, modality=modality)
        v = train_clip_indices(np.random.default_rng(0), 100, 30.0, cfg)
        assert len(v) == 2 and all(len(x[0]) == n for x in v)


@pytest.mark.parametrize("num_frames, fps, overrides, match", [
    (0, 30.0, {}, "num_frames"),
    (10, 0.0, {}, "fps"),
    (10, float("nan"), {}, "fps"),
    (10, 30.0, {"augment": {"fps_jitter": 1.5}}, "fps_jitter"),
    (10, 30.0, {"fps": -1.0}, "data.fps"),
    (10, 30.0, {"sampler": "bogus"}, "sampler"),
    (10, 30.0, {"short_video": "repeat"}, "short_video"),
])
def test_bad_input_raises_a_clear_error(num_frames, fps, overrides, match):
    cfg = cfg_(**overrides)
    with pytest.raises(SamplingError, match=match):
        train_clip_indices(np.random.default_rng(0), num_frames, fps, cfg)
    with pytest.raises(SamplingError, match=match):
        test_clip_indices(num_frames, fps, cfg, 1)
    with pytest.raises(SamplingError, match="num_clips"):
        test_clip_indices(10, 30.0, cfg_(), 0)


def test_vie_trn_consecutive_half_second_bins():
    """VIE-TRN (App. B): four consecutive 0.5 s bins, one frame from each, at a random place."""
    import numpy as np

    from vidssl.config import DataConfig
    from vidssl.data.sampling import test_clip_indices, train_clip_indices

    cfg = DataConfig(sampler="segments", segments=4, segment_seconds=0.5, views=1, test_clips=3)
    fps, n = 30.0, 300  # 10 s; the four bins span 2 s = 60 frames, 15 frames each
    firsts = []
    for seed in range(200):
        (frames,) = train_clip_indices(np.random.default_rng(seed), n, fps, cfg)[0]
        start = frames[0] - frames[0] % 1  # an integer frame
        # frame i lies in bin i: [s + 15 i, s + 15 (i + 1)) for one window start s <= frames[0]
        s_lo = max(0, frames[-1] - 59)
        assert any(all(s + 15 * i <= f < s + 15 * (i + 1) for i, f in enumerate(frames))
                   for s in range(s_lo, int(start) + 1)), frames
        firsts.append(int(frames[0]))
    assert min(firsts) < 30 and max(firsts) > 200  # the window moves over the whole video
    test = test_clip_indices(n, fps, cfg)  # windows at 1/6, 1/2, 5/6 of the 240 free frames, bin centres
    assert [t[0].tolist() for t in test] == [[40 + 7 + 15 * i for i in range(4)], [120 + 7 + 15 * i for i in range(4)],
                                             [200 + 7 + 15 * i for i in range(4)]]
    short = train_clip_indices(np.random.default_rng(0), 40, fps, cfg)[0][0]  # 40 < 60 frames: whole video
    assert short.max() < 40 and len(short) == 4
    whole = DataConfig(sampler="segments", segments=4, views=1)
    spread = [np.ptp(train_clip_indices(np.random.default_rng(s), n, fps, whole)[0][0]) for s in range(20)]
    assert min(spread) > 60  # TSN-style: spread over the whole video
