"""VIE's layer read-out (Sec. 4, Table 1): the time-averaged, grid-pooled stage maps, the same
grid for every backbone family, its feature cache, and ``vidssl eval readout`` end to end."""
import json

import pytest
import torch
import torch.nn.functional as F

from vidssl.cli import main
from vidssl.config import load_config
from vidssl.eval.features import encode_layers
from vidssl.eval.pooling import DEFAULT_GRIDS, pool_stage, readout_dim, readout_grid, time_grid_pool
from vidssl.models import build_backbone

TINY = ["model.width=4", "data.num_frames=4", "data.crop_size=24", "data.test_short_side=28", "data.test_clips=1",
        "data.workers=0", "eval.batch_size=8", "eval.linear_epochs=5"]


@pytest.mark.parametrize("shape, grid", [((2, 3, 4, 7, 7), 3), ((1, 5, 1, 16, 16), 8), ((3, 2, 5, 5, 9), 4),
                                         ((2, 4, 3, 2, 2), 4), ((1, 6, 2, 12, 12), 1)])
def test_time_grid_is_the_time_mean_then_an_adaptive_spatial_grid(shape, grid):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    n, c = shape[:2]
    ref = F.adaptive_avg_pool2d(x.mean(2), grid).reshape(n, c * grid * grid)
    got = time_grid_pool(x, grid)
    assert got.shape == (n, c * grid * grid)
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(pool_stage(x, "conv3", "time_grid", grid), ref)
    if grid == 1:  # a 1 x 1 grid is the global read-out
        torch.testing.assert_close(got, pool_stage(x, "conv3", "global"))


def test_time_grid_by_hand_on_a_divisible_map():
    x = torch.arange(2 * 3 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 3, 2, 4, 4)
    blocks = x.mean(2).reshape(2, 3, 2, 2, 2, 2).mean((3, 5))  # 2 x 2 cells of 2 x 2 pixels
    torch.testing.assert_close(time_grid_pool(x, 2), blocks.flatten(1))


def test_default_grids_give_about_9000_features_at_the_papers_width():
    channels = {"conv1": 64, "conv2": 64, "conv3": 128, "conv4": 256, "conv5": 512}  # ResNet-18, w = 64
    dims = {s: readout_dim(c, s, "time_grid") for s, c in channels.items()}
    assert dims == {"conv1": 9216, "conv2": 9216, "conv3": 8192, "conv4": 9216, "conv5": 8192}
    assert readout_dim(128, "conv3", "global") == 128 and readout_grid("conv4", 3) == 3
    assert set(DEFAULT_GRIDS) == set(channels)


FAMILIES = {  # name: (options, pathways of 2 clips at 8 frames x 32 x 32)
    "r3d18": ({}, 1), "slow_r18": ({}, 1), "resnet2d18": ({}, 1), "trn": ({"segments": 8}, 1),
    "stacked2d18": ({"frames": 8}, 1), "slowfast_r18": ({}, 2), "s3dg": ({}, 1),
}
SAME_CHANNELS = ("r3d18", "slow_r18", "resnet2d18", "trn", "stacked2d18")  # ResNet-18 widths per stage


@pytest.fixture(scope="module")
def family_readouts():
    """{family: ({stage: time_grid features [2, D]}, {stage: map channels}, backbone, clips)}."""
    out = {}
    for name, (options, paths) in FAMILIES.items():
        torch.manual_seed(0)
        b = build_backbone(name, in_channels=3, width=8, **options).eval()  # slowfast: a multiple of beta
        x = torch.randn(2, 3, 8, 32, 32)
        clips = (x,) if paths == 1 else (x[:, :, ::4], x)  # slowfast: slow T = 2, fast alpha T = 8
        with torch.no_grad():
            _, maps = b(*clips, return_stages=True)
        feats = encode_layers(b, clips, ["conv3", "conv4", "conv5"], "time_grid")
        out[name] = (feats, {s: m.shape[1] for s, m in maps.items()}, b, clips)
    return out


def test_every_family_reads_out_the_same_spatial_grid(family_readouts):
    """What is equal across families: the grid G x G (features = C_s G^2 for every family, whatever
    the map's T_s x H_s x W_s), and so the feature count where the stage channels agree."""
    for name, (feats, channels, _, _) in family_readouts.items():
        for stage, f in feats.items():
            assert f.shape == (2, channels[stage] * readout_grid(stage) ** 2), (name, stage)
            assert torch.isfinite(f).all()
    ref = family_readouts["r3d18"]
    for name in SAME_CHANNELS:
        assert {s: f.shape[1] for s, f in family_readouts[name][0].items()} == \
            {s: f.shape[1] for s, f in ref[0].items()}, name
    assert ref[0]["conv5"].shape[1] == 8 * 8 * 16  # 8w channels x 4 x 4 cells
    # SlowFast: C_slow + C_fast (the Fast map averaged over alpha frames); S3D-G: Inception widths
    assert family_readouts["slowfast_r18"][1]["conv5"] > ref[1]["conv5"]
    assert family_readouts["s3dg"][1]["conv5"] != ref[1]["conv5"]


def test_slowfast_readout_is_the_two_pathways_read_out_side_by_side(family_readouts):
    feats, _, b, clips = family_readouts["slowfast_r18"]
    seen = {}
    hooks = [getattr(b, path)["conv4"].register_forward_hook(lambda m, i, o, path=path: seen.__setitem__(path, o))
             for path in ("slow", "fast")]
    try:
        encode_layers(b, clips, ["conv4"], "time_grid")
    finally:
        for h in hooks:
            h.remove()
    g = readout_grid("conv4")
    ref = torch.cat([time_grid_pool(seen["slow"], g).view(2, -1, g * g),
                     time_grid_pool(seen["fast"], g).view(2, -1, g * g)], dim=1).flatten(1)
    torch.testing.assert_close(feats["conv4"], ref)


def test_pool_readout_refuses_the_grid_and_a_bad_stage_is_one_line(family_readouts):
    from vidssl.errors import ConfigError

    _, _, b, clips = family_readouts["r3d18"]
    with pytest.raises(ConfigError, match="reads out a stage"):
        encode_layers(b, clips, ["pool"], "time_grid")
    with pytest.raises(ConfigError, match="eval.readout"):
        encode_layers(b, clips, ["conv9"], "time_grid")
    with pytest.raises(ConfigError, match="readout_grid"):
        load_config("supervised_tiny", ["eval.readout_grid=0"])


def test_cache_key_follows_the_readout_keys(tmp_path, make_video):
    from vidssl.data.manifests import Manifest
    from vidssl.eval.features import EvalContext

    paths = [str(make_video(tmp_path / f"v{i}.mp4", frames=8)) for i in range(2)]
    m = Manifest(paths, [0, 1], source="t")

    def key(*overrides):
        cfg = load_config("supervised_tiny", list(overrides))
        return EvalContext("random", None, cfg, m, m, torch.device("cpu")).cache_key("train")

    keys = [key(), key("eval.readout=conv3"), key("eval.readout=conv3", "eval.readout_pool=time_grid"),
            key("eval.readout=conv3", "eval.readout_pool=time_grid", "eval.readout_grid=2"),
            key("eval.readout=conv4", "eval.readout_pool=time_grid")]
    assert len(set(keys)) == len(keys)
    # the default grid of conv3 (8) is the same read-out as eval.readout_grid=8
    assert key("eval.readout=conv3", "eval.readout_pool=time_grid", "eval.readout_grid=8") == keys[2]
    assert key("eval.readout=conv3", "eval.readout_grid=2") == keys[1]  # the global read-out has no grid
    ctx = EvalContext("random", None, load_config("supervised_tiny"), m, m, torch.device("cpu"))
    kid = ctx.with_readout("conv3", "time_grid")
    assert kid.cache_key("train") == keys[2] and ctx.cfg.eval.readout == "pool"  # the parent is unchanged


def test_eval_readout_end_to_end(synth_dir, tmp_path, capsys, monkeypatch):
    from vidssl.eval import features

    monkeypatch.setenv("VIDSSL_CACHE", str(tmp_path / "cache"))
    passes = []
    real = features.extract_layers
    monkeypatch.setattr(features, "extract_layers", lambda *a, **k: passes.append(list(a[2])) or real(*a, **k))
    args = ["eval", "readout", "--checkpoint", "random", "--config", "supervised_tiny",
            "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"), "--quiet",
            "--layers", "conv3,conv4,conv5", *TINY]
    out = tmp_path / "readout.json"
    capsys.readouterr()
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert passes == [["conv3", "conv4", "conv5"]] * 2  # one pass over the videos per split
    metrics = json.loads(out.read_text())
    assert metrics["protocol"] == "readout" and metrics["readout_pool"] == "time_grid"
    assert list(metrics["layers"]) == ["conv3", "conv4", "conv5"]
    channels = {"conv3": 8, "conv4": 16, "conv5": 32}  # r3d18 at width 4
    for layer, m in metrics["layers"].items():
        assert 0.0 <= m["top1"] <= 1.0 and m["views"] == 1
        assert m["grid"] == readout_grid(layer) and m["features"] == channels[layer] * m["grid"] ** 2
        assert metrics[f"{layer}_top1"] == m["top1"]
    assert text[-2].split() == ["layer", "conv3", "conv4", "conv5"]
    assert text[-1].split() == ["top1"] + [f"{metrics['layers'][x]['top1']:.4f}" for x in channels]
    assert not any(line.startswith("conv3_") for line in text)  # the row, not every layer's metrics
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 6  # 3 layers x 2 splits

    assert main([*args, "--json", str(tmp_path / "again.json")]) == 0  # every layer from the cache
    assert len(passes) == 2
    assert json.loads((tmp_path / "again.json").read_text())["layers"] == metrics["layers"]


def test_eval_readout_errors_are_one_line(synth_dir, capsys):
    base = ["--checkpoint", "random", "--config", "supervised_tiny", "--train", str(synth_dir / "train.csv"),
            "--test", str(synth_dir / "test.csv"), "--quiet", *TINY, "eval.cache=false"]
    assert main(["eval", "knn", *base, "--layers", "conv3"]) == 2
    assert "--layers goes with" in capsys.readouterr().err
    assert main(["eval", "readout", *base, "--layers", "conv3,conv9"]) == 2
    err = capsys.readouterr().err
    assert "'conv9'" in err and "conv5" in err and "Traceback" not in err
