"""Clip augmentations: one draw per clip, crops where the draw says, colour jitter,
grayscale and blur against slow references, test-time crops, modalities, shapes."""
import colorsys
import math
import pickle

import cv2
import numpy as np
import pytest
import torch

from vidssl.config import AugmentConfig, DataConfig
from vidssl.data.transforms import (
    ClipDraw,
    ClipTransform,
    ColorDraw,
    blur_radius,
    color_jitter,
    frames_to_tensor,
    gaussian_blur,
    hsv_to_rgb,
    rgb_to_grayscale,
    rgb_to_hsv,
)
from vidssl.errors import TransformError

NO_PHOTO = dict(color_p=0.0, grayscale_p=0.0, blur_p=0.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
ALL_ON = dict(color_p=1.0, grayscale_p=0.0, blur_p=1.0, short_side=(40, 56))


def cfg_(augment=None, **kw):
    kw.setdefault("crop_size", 32)
    return DataConfig(augment=AugmentConfig(**(augment or {})), **kw)


def clip_(T=4, H=40, W=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, 3), dtype=np.uint8)


def coord_frames(T, H, W):
    """Frames whose red channel is the row and green the column (known pattern)."""
    y, x = np.mgrid[:H, :W]
    f = np.stack([y, x, np.full_like(y, 7)], -1).astype(np.uint8)
    return np.repeat(f[None], T, 0)


# ----------------------------------------------------------------------------- slow references


def ref_gray(img):  # [..., 3, H, W] numpy
    return 0.299 * img[..., 0, :, :] + 0.587 * img[..., 1, :, :] + 0.114 * img[..., 2, :, :]


def ref_color_jitter(frames, draw: ColorDraw):
    """Per frame, per pixel: torchvision's functional math, hue through colorsys."""
    out = []
    for img in frames.astype(np.float64):  # [3, H, W] in [0, 1]
        for op in draw.order:
            if op == 0:
                img = np.clip(img * draw.brightness, 0, 1)
            elif op == 1:
                m = ref_gray(img).mean()
                img = np.clip(draw.contrast * img + (1 - draw.contrast) * m, 0, 1)
            elif op == 2:
                g = ref_gray(img)[None]
                img = np.clip(draw.saturation * img + (1 - draw.saturation) * g, 0, 1)
            else:
                new = np.empty_like(img)
                for i in range(img.shape[1]):
                    for j in range(img.shape[2]):
                        h, s, v = colorsys.rgb_to_hsv(*img[:, i, j])
                        new[:, i, j] = colorsys.hsv_to_rgb((h + draw.hue) % 1.0, s, v)
                img = new
        out.append(img)
    return np.stack(out)


def ref_blur(img, sigma):
    """Direct 2-D convolution with the outer-product kernel, numpy reflect padding."""
    h, w = img.shape
    r = blur_radius(sigma, h, w)
    t = np.arange(-r, r + 1)
    k = np.exp(-t ** 2 / (2 * sigma ** 2))
    k2 = np.outer(k, k) / np.outer(k, k).sum()
    p = np.pad(img.astype(np.float64), r, mode="reflect")
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = (p[i:i + 2 * r + 1, j:j + 2 * r + 1] * k2).sum()
    return out


# ----------------------------------------------------------------------------- pixel ops


def test_hsv_round_trip_matches_colorsys():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    x[0, :, 0, 0] = 0.5  # a grey pixel
    x[0, :, 0, 1] = 0.0  # black
    hsv = rgb_to_hsv(x)
    for n in range(2):
        for i in range(5):
            for j in range(5):
                ref = colorsys.rgb_to_hsv(*x[n, :, i, j].tolist())
                assert np.allclose(hsv[n, :, i, j].numpy(), ref, atol=1e-9)
    assert torch.allclose(hsv_to_rgb(hsv), x, atol=1e-9)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
@pytest.mark.parametrize("factors", [(1.3, 0.7, 1.4, 0.08), (0.6, 1.5, 0.0, -0.3), (1.0, 1.0, 1.0, 0.5)])
def test_color_jitter_matches_reference(order, factors):
    x = torch.rand(3, 3, 6, 7, dtype=torch.float64)
    draw = ColorDraw(order, *factors)
    got = color_jitter(x.clone(), draw).numpy()
    assert np.allclose(got, ref_color_jitter(x.numpy(), draw), atol=1e-7)


@pytest.mark.parametrize("sigma, size", [(0.5, (12, 12)), (1.3, (12, 15)), (2.0, (16, 16)), (2.0, (5, 5)), (0.1, (6, 6))])
def test_gaussian_blur_matches_references(sigma, size):
    img = np.random.default_rng(0).random(size)
    got = gaussian_blur(torch.from_numpy(img)[None, None].float(), sigma)[0, 0].double().numpy()
    assert np.allclose(got, ref_blur(img, sigma), atol=1e-5)
    r = blur_radius(sigma, *size)
    if r == math.ceil(3 * sigma):  # OpenCV agrees when the kernel is not shortened
        cv = cv2.GaussianBlur(img, (2 * r + 1, 2 * r + 1), sigma, borderType=cv2.BORDER_REFLECT_101)
        assert np.allclose(got, cv, atol=1e-5)


def test_grayscale_weights():
    x = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(rgb_to_grayscale(x), torch.tensor(0.299))
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(rgb_to_grayscale(x)[:, 0], torch.from_numpy(ref_gray(x.numpy())).float(), atol=1e-6)


# ----------------------------------------------------------------------------- one draw per clip


@pytest.mark.parametrize("crop", ["scale_jitter", "resized", "center"])
@pytest.mark.parametrize("modality", ["rgb", "diff"])
def test_identical_frames_stay_identical(crop, modality):
    """Every frame of a clip gets the same crop, flip, colour, grayscale and blur."""
    frame = clip_(1, 40, 48)
    frames = np.repeat(frame, 6, 0)
    aug = dict(ALL_ON, crop=crop, grayscale_p=0.5)
    t = ClipTransform(cfg_(aug, modality=modality), train=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        (out,) = t([frames], rng)
        if modality == "rgb":
            assert torch.equal(out, out[:, :1].expand_as(out))
        else:  # differences of identical frames
            assert out.abs().max() == 0


def test_pathways_share_the_draw():
    frames = clip_(8, 40, 48, seed=1)
    cfg = cfg_(dict(ALL_ON, grayscale_p=0.5, crop="resized"), sampler="two_rate")
    t = ClipTransform(cfg, train=True)
    rng = np.random.default_rng(0)
    for _ in range(5):
        slow, fast = t([frames[::4], frames], rng)
        assert slow.shape == (3, 2, 32, 32) and fast.shape == (3, 8, 32, 32)
        assert torch.allclose(slow, fast[:, ::4], atol=1e-6)


def test_new_call_new_draw_and_determinism():
    frames = clip_(4, 40, 48)
    t = ClipTransform(cfg_(ALL_ON), train=True)
    rng = np.random.default_rng(0)
    outs = [t([frames], rng)[0] for _ in range(4)]
    assert all(not torch.equal(outs[i], outs[j]) for i in range(4) for j in range(i))
    again = [t([frames], r)[0] for r in [np.random.default_rng(0)] for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))


def test_draws_vary_across_calls():
    t = ClipTransform(cfg_(ALL_ON), train=True)
    rng = np.random.default_rng(0)
    draws = [t.draw(rng, 40, 48) for _ in range(200)]
    assert len({d.box for d in draws}) > 50
    flips = np.mean([d.flip for d in draws])
    assert 0.35 < flips < 0.65
    orders = {d.color.order for d in draws}
    assert len(orders) > 10  # the op order is random per clip
    b = [d.color.brightness for d in draws]
    assert 0.8 <= min(b) < 0.85 and 1.15 < max(b) <= 1.2  # 0.4 s with s = 0.5
    h = [d.color.hue for d in draws]
    assert -0.05 <= min(h) < -0.04 and 0.04 < max(h) <= 0.05
    sig = [d.blur_sigma for d in draws]
    assert 0.1 <= min(sig) < 0.3 and 1.8 < max(sig) <= 2.0


def test_probabilities_of_the_draws():
    aug = dict(color_p=0.8, grayscale_p=0.2, blur_p=0.5, temporal_diff_p=0.3)
    t = ClipTransform(cfg_(aug), train=True)
    rng = np.random.default_rng(0)
    draws = [t.draw(rng, 40, 48) for _ in range(2000)]
    assert abs(np.mean([d.color is not None for d in draws]) - 0.8) < 0.04
    assert abs(np.mean([d.grayscale for d in draws]) - 0.2) < 0.04
    assert abs(np.mean([d.blur_sigma is not None for d in draws]) - 0.5) < 0.04
    assert abs(np.mean([d.temporal_diff for d in draws]) - 0.3) < 0.04
    off = ClipTransform(cfg_(dict(flip=False, color_p=0, grayscale_p=0, blur_p=0)), train=True)
    d = [off.draw(rng, 40, 48) for _ in range(50)]
    assert not any(x.flip or x.color or x.grayscale or x.blur_sigma or x.temporal_diff for x in d)


# ----------------------------------------------------------------------------- crops where the draw says


@pytest.mark.parametrize("H, W", [(32, 60), (50, 32)])
def test_scale_jitter_crop_is_where_the_draw_says(H, W):
    # short side == crop size and r in [S, S]: the crop is taken without resizing
    frames = coord_frames(3, H, W)
    t = ClipTransform(cfg_(dict(NO_PHOTO, short_side=(32, 32))), train=True)
    rng = np.random.default_rng(0)
    seen_flip = set()
    for _ in range(10):
        draw = t.draw(np.random.default_rng(rng.integers(1 << 30)), H, W)
        top, left, h, w = draw.box
        assert (h, w) == (32, 32) and 0 <= top <= H - 32 and 0 <= left <= W - 32
        out = t.apply([frames], draw)[0] * 255  # [3, T, 32, 32]
        rows = torch.arange(top, top + 32, dtype=torch.float32).view(32, 1).expand(32, 32)
        cols = torch.arange(left, left + 32, dtype=torch.float32).view(1, 32).expand(32, 32)
        if draw.flip:
            cols = cols.flip(-1)
        seen_flip.add(draw.flip)
        for f in range(3):
            assert torch.allclose(out[0, f], rows, atol=1e-3) and torch.allclose(out[1, f], cols, atol=1e-3)
    assert seen_flip == {True, False}


def test_scale_jitter_box_size_and_resize_up():
    t = ClipTransform(cfg_(dict(short_side=(64, 80)), crop_size=56), train=True)
    rng = np.random.default_rng(0)
    sides = {t.draw(rng, 80, 100).box[2] for _ in range(300)}
    # side = round(56 * 80 / r) for r in 64..80
    assert sides == {round(56 * 80 / r) for r in range(64, 81)}
    small = ClipTransform(cfg_(dict(short_side=(20, 30)), crop_size=56), train=True)
    # r < S: the frame is resized up, so the crop covers the whole short side
    assert all(small.draw(rng, 40, 50).box[2] == 40 for _ in range(20))
    out = small([clip_(2, 40, 50)], rng)[0]
    assert out.shape == (3, 2, 56, 56)


def test_resized_crop_draws_follow_area_and_aspect():
    aug = dict(crop="resized", area=(0.2, 0.76), aspect=(0.75, 4 / 3))
    t = ClipTransform(cfg_(aug), train=True)
    rng = np.random.default_rng(0)
    H, W = 90, 120
    for _ in range(300):
        top, left, h, w = t.draw(rng, H, W).box
        assert 0 <= top and top + h <= H and 0 <= left and left + w <= W
        assert 0.2 * 0.9 <= h * w / (H * W) <= 0.76 * 1.1
        assert 0.75 * 0.9 <= w / h <= 4 / 3 * 1.1


def test_resized_crop_falls_back_to_a_centre_crop():
    # whole-frame area with aspect 2 never fits a square frame: fallback, clamped to the ratio
    t = ClipTransform(cfg_(dict(crop="resized", area=(1.0, 1.0), aspect=(2.0, 2.0))), train=True)
    assert t.draw(np.random.default_rng(0), 40, 40).box == (10, 0, 20, 40)
    t = ClipTransform(cfg_(dict(crop="resized", area=(1.0, 1.0), aspect=(0.25, 0.5))), train=True)
    assert t.draw(np.random.default_rng(0), 40, 40).box == (0, 10, 40, 20)


def test_center_crop_for_weak_augmentation():
    t = ClipTransform(cfg_(dict(NO_PHOTO, crop="center", flip=False)), train=True)
    frames = coord_frames(2, 32, 48)
    draw = t.draw(np.random.default_rng(0), 32, 48)
    assert draw.box == (0, 8, 32, 32)
    out = t.apply([frames], draw)[0] * 255
    assert out[1, 0, 0, 0] == pytest.approx(8, abs=1e-3) and out[1, 0, 0, 31] == pytest.approx(39, abs=1e-3)


# ----------------------------------------------------------------------------- test time


@pytest.mark.parametrize("H, W, lefts, tops", [
    (32, 80, [0, 24, 48], [0, 0, 0]),  # landscape: left / centre / right
    (70, 32, [0, 0, 0], [0, 19, 38]),  # portrait: top / centre / bottom
    (32, 32, [0, 0, 0], [0, 0, 0]),
])
def test_three_crops_along_the_long_side(H, W, lefts, tops):
    cfg = cfg_(dict(NO_PHOTO), test_short_side=32, test_crops=3)
    t = ClipTransform(cfg, train=False)
    assert t.test_boxes(H, W) == [(tp, lf, 32, 32) for tp, lf in zip(tops, lefts)]
    crops = t([coord_frames(2, H, W)])
    assert len(crops) == 3 and all(len(c) == 1 for c in crops)
    for (out,), tp, lf in zip(crops, tops, lefts):
        assert out.shape == (3, 2, 32, 32)
        assert out[0, 0, 0, 0] * 255 == pytest.approx(tp, abs=1e-3)
        assert out[1, 0, 0, 0] * 255 == pytest.approx(lf, abs=1e-3)
    # deterministic
    again = t([coord_frames(2, H, W)])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(crops, again))


def test_test_time_resize_then_centre_crop():
    # short side 40 -> 20, crop 16: in input pixels a 32 x 32 centre box
    cfg = cfg_(dict(NO_PHOTO), crop_size=16, test_short_side=20, test_crops=1)
    t = ClipTransform(cfg, train=False)
    assert t.test_boxes(40, 60) == [(4, 14, 32, 32)]
    (out,), = t([coord_frames(1, 40, 60)])
    assert out.shape == (3, 1, 16, 16)
    # a linear ramp stays linear under a 2x antialiased bilinear shrink (inside the frame)
    rows = 4 + 2 * np.arange(16) + 0.5
    assert np.allclose(out[0, 0, 2:-2, 8].numpy() * 255, rows[2:-2], atol=0.6)
    # crop larger than the resized frame: clamped to the frame (resized up)
    t2 = ClipTransform(cfg_(crop_size=48, test_short_side=32), train=False)
    assert t2.test_boxes(32, 40) == [(0, 4, 32, 32)]
    assert t2([clip_(2, 32, 40)])[0][0].shape == (3, 2, 48, 48)


def test_test_time_ignores_random_augmentation():
    cfg = cfg_(dict(ALL_ON, grayscale_p=1.0, temporal_diff_p=1.0), test_crops=3)
    t = ClipTransform(cfg, train=False)
    frames = clip_(3, 40, 48)
    a = t([frames], np.random.default_rng(0))
    b = t([frames], np.random.default_rng(1))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    box = t.test_boxes(40, 48)[1]
    crop = frames[:, box[0]:box[0] + box[2], box[1]:box[1] + box[3]]
    ref = torch.nn.functional.interpolate(torch.from_numpy(crop).permute(0, 3, 1, 2), size=(32, 32),
                                          mode="bilinear", antialias=True).float() / 255
    ref = (ref - 0.45) / 0.225
    assert torch.allclose(a[1][0], ref.permute(1, 0, 2, 3), atol=1e-5)


# ----------------------------------------------------------------------------- photometric ops in the pipeline


def test_pipeline_colour_matches_reference():
    # crop == frame size: no resize, so the output is the colour op on the input
    frames = clip_(2, 8, 8, seed=3)
    cfg = cfg_(dict(NO_PHOTO, short_side=(8, 8), color_p=1.0, flip=False), crop_size=8)
    t = ClipTransform(cfg, train=True)
    draw = t.draw(np.random.default_rng(5), 8, 8)
    assert draw.color is not None and draw.box == (0, 0, 8, 8)
    out = t.apply([frames], draw)[0].permute(1, 0, 2, 3).double().numpy()
    ref = ref_color_jitter(frames.transpose(0, 3, 1, 2) / 255.0, draw.color)
    assert np.allclose(out, ref, atol=1e-5)


def test_pipeline_grayscale_blur_flip_and_normalisation():
    frames = clip_(2, 12, 12, seed=4)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    cfg = cfg_(dict(short_side=(12, 12), mean=mean, std=std), crop_size=12)
    t = ClipTransform(cfg, train=True)
    x = frames_to_tensor(frames).double()  # [T, 3, H, W]
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    base = ClipDraw(box=(0, 0, 12, 12))

    def run(draw):
        return t.apply([frames], draw)[0].permute(1, 0, 2, 3).double()

    assert torch.allclose(run(base), (x - m) / s, atol=1e-5)
    gray = x[:, :1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:] * 0.114
    assert torch.allclose(run(ClipDraw(box=base.box, grayscale=True)), (gray.expand(-1, 3, -1, -1) - m) / s, atol=1e-5)
    blurred = torch.stack([torch.stack([torch.from_numpy(ref_blur(x[f, c].numpy(), 1.2)) for c in range(3)])
                           for f in range(2)])
    assert torch.allclose(run(ClipDraw(box=base.box, blur_sigma=1.2)), (blurred - m) / s, atol=1e-5)
    assert torch.allclose(run(ClipDraw(box=base.box, flip=True)), ((x - m) / s).flip(-1), atol=1e-5)


# ----------------------------------------------------------------------------- modalities


def test_diff_modality_values():
    frames = clip_(5, 10, 10, seed=6)  # T + 1 = 5 frames -> 4 differences
    std = (0.2, 0.25, 0.3)
    cfg = cfg_(dict(NO_PHOTO, std=std, mean=(0.5, 0.5, 0.5)), crop_size=10, modality="diff")
    t = ClipTransform(cfg, train=True)
    (out,) = t.apply([frames], ClipDraw(box=(0, 0, 10, 10)))
    assert out.shape == (3, 4, 10, 10)
    f = frames.astype(np.float64) / 255.0
    g = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]  # [T + 1, H, W]
    for c in range(3):
        for k in range(4):
            assert np.allclose(out[c, k].numpy(), (g[k + 1] - g[k]) / std[c], atol=1e-5)


def test_temporal_difference_augmentation_keeps_T():
    frames = clip_(4, 10, 10, seed=7)
    cfg = cfg_(dict(NO_PHOTO, temporal_diff_p=1.0, std=(0.5, 0.5, 0.5)), crop_size=10)
    t = ClipTransform(cfg, train=True)
    draw = ClipDraw(box=(0, 0, 10, 10), temporal_diff=True)
    (out,) = t.apply([frames], draw)
    assert out.shape == (3, 4, 10, 10)
    f = frames.astype(np.float64) / 255.0
    g = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    d = np.diff(g, axis=0) / 0.5
    assert np.allclose(out[0, :3].numpy(), d, atol=1e-5)
    assert torch.equal(out[:, 3], out[:, 2])  # last difference repeated
    assert torch.equal(out[0], out[2])
    (one,) = t.apply([frames[:1]], draw)
    assert one.shape == (3, 1, 10, 10) and one.abs().max() == 0
    assert t.draw(np.random.default_rng(0), 10, 10).temporal_diff


def moving_square(T, H=32, W=32, step=2):
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    frames = np.full((T, H, W, 3), 90, np.uint8)
    for t in range(T):
        x0 = 4 + step * t
        frames[t, 11:21, x0:x0 + 10] = tex
    return frames


def test_flow_modality_moving_square():
    frames = moving_square(4)
    cfg = cfg_(dict(NO_PHOTO, short_side=(32, 32)), modality="flow")
    t = ClipTransform(cfg, train=True)
    (out,) = t.apply([frames], ClipDraw(box=(0, 0, 32, 32)))
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()
    assert out.abs().max() <= 2.0
    assert torch.allclose(out.mean(dim=(-2, -1)), torch.zeros(2, 3), atol=1e-5)  # spatial mean removed
    dx_in, dx_out = out[0, :, 13:19, 8:16].mean(), out[0, :, 26:, :].mean()
    assert dx_in - dx_out > 0.1  # the square moves right by 2 px = 0.2 after scaling
    (flipped,) = t.apply([frames], ClipDraw(box=(0, 0, 32, 32), flip=True))
    assert flipped[0, :, 13:19, 16:24].mean() - flipped[0, :, 26:, :].mean() < -0.1
    # the transform stays picklable for DataLoader workers after using OpenCV
    assert isinstance(pickle.loads(pickle.dumps(t)), ClipTransform)


# ----------------------------------------------------------------------------- shapes, errors


@pytest.mark.parametrize("crop", ["scale_jitter", "resized", "center"])
@pytest.mark.parametrize("modality, C, dT", [("rgb", 3, 0), ("diff", 3, -1), ("flow", 2, -1)])
@pytest.mark.parametrize("train, crops", [(True, None), (False, 1), (False, 3)])
def test_shapes_for_all_options(crop, modality, C, dT, train, crops):
    cfg = cfg_(dict(ALL_ON, crop=crop, grayscale_p=0.5, temporal_diff_p=0.5), crop_size=24,
               test_short_side=28, test_crops=crops or 1, modality=modality)
    t = ClipTransform(cfg, train=train)
    frames = clip_(9, 30, 40)
    out = t([frames[::4], frames], np.random.default_rng(0))
    groups = [out] if train else out
    assert len(groups) == (crops or 1)
    for g in groups:
        assert [tuple(x.shape) for x in g] == [(C, 3 + dT, 24, 24), (C, 9 + dT, 24, 24)]
        assert all(x.dtype == torch.float32 and x.is_contiguous() and torch.isfinite(x).all() for x in g)


@pytest.mark.parametrize("pathways, modality, match", [
    ([np.zeros((2, 8, 8, 3), np.float32)], "rgb", "uint8"),
    ([np.zeros((2, 8, 8), np.uint8)], "rgb", "uint8"),
    ([], "rgb", "non-empty"),
    (np.zeros((2, 8, 8, 3), np.uint8), "rgb", "list"),
    ([np.zeros((1, 8, 8, 3), np.uint8)], "diff", "needs >= 2 frames"),
    ([np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 9, 3), np.uint8)], "rgb", "frame size"),
])
def test_bad_frames_raise(pathways, modality, match):
    t = ClipTransform(cfg_(modality=modality), train=True)
    with pytest.raises(TransformError, match=match):
        t(pathways, np.random.default_rng(0))


def test_bad_settings_raise():
    with pytest.raises(TransformError, match="color_p"):
        ClipTransform(cfg_(dict(color_p=1.5)), train=True)
    with pytest.raises(TransformError, match="area"):
        ClipTransform(cfg_(dict(area=(0.5, 1.5))), train=True)
    with pytest.raises(TransformError, match="test_crops"):
        ClipTransform(cfg_(test_crops=2), train=False)
    with pytest.raises(TransformError, match="rng"):
        ClipTransform(cfg_(), train=True)([clip_(2, 8, 8)])
