"""VIE's two-stream models (Sec. 4): the embedding is the two streams' outputs side by side, the single
stream sees the centre frame of the multi-frame clip (the same time span), the read-outs join both
streams, and the model trains and evaluates through the CLI like any backbone."""
import json

import numpy as np
import pytest
import torch

from vidssl.config import load_config
from vidssl.data.sampling import test_clip_indices, train_clip_indices
from vidssl.errors import BackboneError
from vidssl.eval.features import encode_layers
from vidssl.eval.pooling import readout_grid, time_grid_pool
from vidssl.models import build_backbone
from vidssl.models.base import stage_modules

# two-stream name -> (multi-frame stream, its options, pathways)
STREAMS = {"twostream_s": ("slow_r18", {}, 1), "twostream_sf": ("slowfast_r18", {"fusion_kernel": 5}, 2)}


def clips_for(paths: int, n: int = 2, t: int = 4, size: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    fast = torch.randn(n, 3, 4 * t, size, size, generator=g)
    return (torch.randn(n, 3, t, size, size, generator=g),) if paths == 1 else (fast[:, :, ::4].clone(), fast)


def parts(name: str, width: int = 8):
    """The two-stream model and standalone copies of its streams with the same weights (eval mode)."""
    multi_name, opts, paths = STREAMS[name]
    torch.manual_seed(0)
    two = build_backbone(name, width=width, **opts).eval()
    single = build_backbone("resnet2d18", width=width, preact=True)
    multi = build_backbone(multi_name, width=width, preact=True, **opts)
    single.load_state_dict(two.single.state_dict())
    multi.load_state_dict(two.multi.state_dict())
    return two, single.eval(), multi.eval(), paths


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("t,size", [(4, 32), (3, 28), (1, 24)])
def test_embedding_is_the_two_streams_side_by_side(name, t, size):
    two, single, multi, paths = parts(name)
    clips = clips_for(paths, t=t, size=size)
    centre = clips[0][:, :, t // 2:t // 2 + 1]
    with torch.no_grad():
        out = two(*clips)
        ref = torch.cat([single(centre), multi(*clips)], dim=1)
    assert out.shape == (2, single.feat_dim + multi.feat_dim) == (2, two.feat_dim)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("name", list(STREAMS))
def test_stage_maps_and_readouts_join_both_streams(name):
    two, single, multi, paths = parts(name)
    clips = clips_for(paths)
    centre = clips[0][:, :, 2:3]
    with torch.no_grad():
        pooled, maps = two(*clips, return_stages=True)
        _, m1 = single(centre, return_stages=True)
        _, m2 = multi(*clips, return_stages=True)
    for stage, fmap in maps.items():
        ref = torch.cat([m1[stage], m2[stage].mean(2, keepdim=True)], dim=1)
        assert fmap.shape == ref.shape and fmap.shape[2] == 1
        torch.testing.assert_close(fmap, ref)
    torch.testing.assert_close(pooled, maps["conv5"].mean((2, 3, 4)))  # pooled = the conv5 map's mean
    # VIE's read-out (time mean, then a grid) of the joined map = each stream's read-out, side by side
    feats = encode_layers(two, clips, ["conv3", "conv4", "conv5"], "time_grid")
    for stage, f in feats.items():
        g = readout_grid(stage)
        ref = torch.cat([time_grid_pool(m1[stage], g), time_grid_pool(m2[stage], g)], dim=1)
        assert f.shape == (2, (m1[stage].shape[1] + m2[stage].shape[1]) * g * g)
        torch.testing.assert_close(f, ref)


def test_the_single_stream_sees_only_the_centre_frame():
    two, _, _, _ = parts("twostream_s")
    (x,) = clips_for(1, t=4)
    d1 = two.single.feat_dim
    with torch.no_grad():
        base = two(x)
        other = x.clone()
        other[:, :, [0, 1, 3]] += 1.0  # every frame but T // 2 = 2
        moved = two(other)
        centre = x.clone()
        centre[:, :, 2] += 1.0
        moved_centre = two(centre)
    torch.testing.assert_close(moved[:, :d1], base[:, :d1])
    assert not torch.allclose(moved[:, d1:], base[:, d1:])
    assert not torch.allclose(moved_centre[:, :d1], base[:, :d1])


@pytest.mark.parametrize("recipe", ["vie_twostream_sf_la_tiny", "vie_twostream_sf_la"])
def test_the_centre_frame_is_the_middle_of_both_pathways_span(recipe):
    """Slow frame T // 2 is the Fast pathway's frame alpha T // 2 (the same time), in the middle of the span."""
    d = load_config(recipe).data
    a, t = d.fast_alpha, d.num_frames
    rng = np.random.default_rng(0)
    clips = test_clip_indices(250, 25.0, d, 5) + train_clip_indices(rng, 250, 25.0, d)
    for slow, fast in clips:
        assert slow[t // 2] == fast[a * t // 2]
        span = t * d.stride
        assert slow[t // 2] - slow[0] == span // 2


def test_parameters_and_stages_are_the_two_streams():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    single = count(build_backbone("resnet2d18", width=64, preact=True))
    for name, (multi_name, opts, _) in STREAMS.items():
        two = build_backbone(name, width=64, **opts)
        assert count(two) == single + count(build_backbone(multi_name, width=64, preact=True, **opts)), name
        mods = stage_modules(two, "conv3")  # what fine-tuning freezes: the stage in both streams
        assert mods[0] is two.single.stages["conv3"], name
        assert mods[1:] == stage_modules(two.multi, "conv3"), name
    # 11.17M (Single) + 20.02M (Slow) and + 21.55M (SlowFast) at w = 64
    assert count(build_backbone("twostream_s", width=64)) == 11_174_720 + 20_022_080


def test_bad_inputs_are_one_clear_error():
    s = build_backbone("twostream_s", width=8)
    sf = build_backbone("twostream_sf", width=8)
    x = torch.randn(1, 3, 4, 32, 32)
    with pytest.raises(BackboneError, match="takes one clip"):
        s(x, x)
    with pytest.raises(BackboneError, match="two pathways"):
        sf(x)
    with pytest.raises(BackboneError, match="input channels"):
        s(torch.randn(1, 2, 4, 32, 32))


TINY = ["model.width=8", "data.crop_size=32", "data.augment.short_side=[32, 36]", "data.test_short_side=32",
        "data.batch_size=4", "data.workers=0", "data.test_clips=1", "train.epochs=1", "train.max_steps_per_epoch=2",
        "train.progress=false", "train.log_every=1", "method.ir_warmup_epochs=0", "eval.batch_size=8",
        "eval.linear_epochs=3"]


@pytest.mark.parametrize("recipe", ["vie_twostream_s_la_tiny", "vie_twostream_sf_ir_tiny"])
def test_pretrain_two_steps_then_read_out_through_the_cli(recipe, synth_dir, tmp_path, monkeypatch):
    from vidssl.cli import main

    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    ov = [o for o in TINY if not (o.startswith("method.") and "_ir_" in recipe)]
    assert main(["pretrain", recipe, f"data.train={synth_dir / 'train.csv'}", "--run-dir", str(run), *ov]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(np.isfinite(r["loss"]) for r in steps)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert any(k.startswith("backbone.single.") for k in ckpt["model"])
    assert any(k.startswith("backbone.multi.") for k in ckpt["model"])
    if "_la_" in recipe:  # LA clustered before its first step
        assert ckpt["model"]["cluster_labels"].shape[0] == 10
    out = tmp_path / "readout.json"
    assert main(["eval", "readout", "--checkpoint", str(run), "--train", str(synth_dir / "train.csv"),
                 "--test", str(synth_dir / "test.csv"), "--quiet", "--json", str(out),
                 "data.workers=0", "eval.linear_epochs=3", "eval.batch_size=8"]) == 0
    metrics = json.loads(out.read_text())
    width = 8
    fast = 8 * width // 8 if "sf" in recipe else 0  # SlowFast's Fast pathway: 8 w / beta channels at conv5
    assert metrics["layers"]["conv5"]["features"] == (8 * width + 8 * width + fast) * readout_grid("conv5") ** 2
    for layer in ("conv3", "conv4", "conv5"):
        assert 0.0 <= metrics["layers"][layer]["top1"] <= 1.0
