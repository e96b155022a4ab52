"""The notebook API: ``vidssl.load_encoder(...).embed(video)`` gives the numbers of ``vidssl eval``'s
features (the mean over the test-time views), for paths, frame arrays and batches."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import vidssl
from vidssl.errors import ConfigError, ManifestError
from vidssl.eval.features import make_context

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.test_clips=2", "data.workers=0", "eval.cache=false", "eval.batch_size=8"]


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def ref(synth_dir):
    """(encoder, eval context, test features [M, V, D]) of frozen random ir_tiny weights."""
    enc = vidssl.load_encoder("random", TINY, recipe="ir_tiny")
    ctx = make_context("random", str(synth_dir / "train.csv"), str(synth_dir / "test.csv"), TINY,
                       progress=False, recipe="ir_tiny")
    feats, _ = ctx.features("test")
    return enc, ctx, feats


def test_import_vidssl_stays_cheap_and_exposes_the_api():
    code = ("import sys, vidssl; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert {'load_encoder', 'Encoder', 'build_backbone'} <= set(dir(vidssl)); "
            "net = vidssl.build_backbone('r3d18', width=4); print(net.feat_dim)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "32"
    with pytest.raises(AttributeError):
        vidssl.no_such_thing  # noqa: B018


def test_encoder_carries_the_test_time_preprocessing(ref):
    enc, _, feats = ref
    assert not enc.backbone.training and not any(p.requires_grad for p in enc.backbone.parameters())
    assert enc.num_views == 2 == feats.shape[1]
    d = enc.cfg.data
    assert (d.modality, d.num_frames, d.stride, d.crop_size, d.test_clips) == ("diff", 4, 2, 24, 2)
    assert enc.view_pooling == "none" and enc.device == torch.device("cpu")


def test_embed_a_path_equals_the_eval_features(ref):
    enc, ctx, feats = ref
    for i in (0, len(ctx.test) - 1):
        v = enc.embed(ctx.test.paths[i])
        assert v.shape == (feats.shape[-1],) and v.dtype == torch.float32
        close(v, feats[i].mean(0))
        close(enc.views(ctx.test.paths[i]), feats[i])


def test_embed_batch_with_workers_equals_the_eval_features(ref):
    enc, ctx, feats = ref
    out = enc.embed_batch(ctx.test.paths, workers=2, batch_size=4)
    assert out.shape == (len(ctx.test), feats.shape[-1])
    close(out, feats.mean(1))


def test_embed_a_frame_array_equals_the_decoded_video(ref):
    from vidssl.data.video import probe, read_frames

    enc, ctx, feats = ref
    path = ctx.test.paths[1]
    frames = read_frames(path, np.arange(probe(path).num_frames))  # uint8 [T, H, W, 3]
    close(enc.embed(frames), feats[1].mean(0))
    close(enc.embed(torch.from_numpy(frames)), feats[1].mean(0))
    close(enc.embed_batch([frames, frames])[1], feats[1].mean(0))
    with pytest.raises(ValueError, match="uint8"):
        enc.embed(frames.astype(np.float32))


def test_view_pooling_mean_gives_the_same_embedding(synth_dir, ref):
    _, _, feats = ref
    enc = vidssl.load_encoder("random", [*TINY, "eval.view_pooling=mean"], recipe="ir_tiny")
    ctx = make_context("random", str(synth_dir / "train.csv"), str(synth_dir / "test.csv"),
                       [*TINY, "eval.view_pooling=mean"], progress=False, recipe="ir_tiny")
    pooled, _ = ctx.features("test")
    assert pooled.shape[1] == 1 and enc.view_pooling == "mean"
    close(enc.embed(ctx.test.paths[2]), pooled[2, 0])
    close(pooled[:, 0], feats.mean(1))


def test_a_video_that_cannot_be_decoded_gets_a_nan_row(ref, tmp_path):
    enc, ctx, feats = ref
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    out = enc.embed_batch([ctx.test.paths[0], str(bad), ctx.test.paths[3]])
    assert torch.isnan(out[1]).all()
    close(out[[0, 2]], feats[[0, 3]].mean(1))


def test_bad_requests_fail_with_one_clear_error(ref, tmp_path):
    enc, _, _ = ref
    with pytest.raises(ConfigError, match="checkpoint not found"):
        vidssl.load_encoder(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="random"):
        vidssl.load_encoder(tmp_path / "run.pt", recipe="ir_tiny")
    with pytest.raises(ManifestError, match="missing.mp4"):
        enc.embed_batch([str(tmp_path / "missing.mp4")])


def test_normed_mean_pooling_is_vie_video_embedding():
    """VIE Sec. 3: the L2-normalised mean of the L2-normalised clip embeddings."""
    import torch

    from vidssl.eval.features import pool_views

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(5, 3, 7, generator=g) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1)
    got = pool_views(feats, "normed_mean")
    for i in range(5):
        ref = sum(feats[i, v] / feats[i, v].norm() for v in range(3)) / 3
        torch.testing.assert_close(got[i], ref / ref.norm())
    torch.testing.assert_close(pool_views(feats, "mean"), feats.mean(1))
    assert torch.allclose(got.norm(dim=1), torch.ones(5))
