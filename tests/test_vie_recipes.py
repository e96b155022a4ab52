"""The VIE recipes: every family with IR and LA at the paper's settings (VIE Sec. 4, App. A-B; the
training of Zhuang et al. 2019), the tiny CPU variants, and a sampler that fits each backbone."""
import numpy as np
import pytest
import torch

from vidssl.config import in_channels, load_config, packaged_recipes, to_dict
from vidssl.data.sampling import train_clip_indices
from vidssl.models import build_backbone

FAMILIES = ["single", "3dresnet", "trn", "slow", "slowfast", "twostream_s", "twostream_sf"]
RECIPES = [f"vie_{f}_{m}{s}" for f in FAMILIES for m in ("ir", "la") for s in ("", "_tiny")]
SAMPLING = ("sampler", "num_frames", "stride", "segments", "segment_seconds", "fast_alpha", "fps")
# App. B: family -> (backbone, sampling at paper sizes, crop)
APP_B = {
    "single": ("resnet2d18", {"sampler": "clips", "num_frames": 1}, 224),
    "3dresnet": ("r3d18", {"sampler": "clips", "num_frames": 16, "stride": 1}, 112),
    "trn": ("trn", {"sampler": "segments", "segments": 4, "segment_seconds": 0.5}, 224),
    "slow": ("slow_r18", {"sampler": "clips", "num_frames": 4, "stride": 16}, 224),
    "slowfast": ("slowfast_r18", {"sampler": "two_rate", "num_frames": 4, "stride": 16, "fast_alpha": 4}, 224),
    "twostream_s": ("twostream_s", {"sampler": "clips", "num_frames": 4, "stride": 16}, 224),
    "twostream_sf": ("twostream_sf", {"sampler": "two_rate", "num_frames": 4, "stride": 16, "fast_alpha": 4}, 224),
}


def sampling(cfg) -> dict:
    return {k: getattr(cfg.data, k) for k in SAMPLING}


def test_every_vie_recipe_is_listed_with_a_description():
    listed = packaged_recipes()
    names = RECIPES + [f"vie_input_single_{f}{s}" for f in ("3dresnet", "trn", "slow", "slowfast")
                       for s in ("", "_tiny")]
    for name in names:
        assert listed.get(name), name
    assert {n for n in listed if n.startswith("vie_")} == set(names)


@pytest.mark.parametrize("family", FAMILIES)
def test_paper_recipes_hold_the_papers_settings(family):
    ir, la = load_config(f"vie_{family}_ir"), load_config(f"vie_{family}_la")
    backbone, samp, crop = APP_B[family]
    for cfg in (ir, la):
        assert cfg.model.backbone == backbone and cfg.model.width == 64 and cfg.model.options["preact"] is True
        assert all(getattr(cfg.data, k) == v for k, v in samp.items()), family
        assert cfg.data.crop_size == crop and cfg.data.fps == 25 and cfg.data.views == 1
        assert cfg.data.test_clips == 5 and cfg.data.test_short_side == (128 if crop == 112 else 256)
        assert (cfg.data.batch_size, cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == \
            (256, "sgd", 0.03, 0.9, 1e-4)
        assert (cfg.train.epochs, cfg.optim.schedule, cfg.optim.milestones) == (200, "step", [160, 190])
        m = cfg.method
        assert (m["embed_dim"], m["temperature"], m["bank_momentum"], m["loss"], m["noise_samples"]) == \
            (128, 0.07, 0.5, "nce", 4096)
    assert ir.method["name"] == "ir" and la.method["name"] == "la"
    m = la.method
    assert (m["num_clusters"], m["background_neighbors"], m["num_clusterings"], m["ir_warmup_epochs"]) == \
        (8000, 512, 10, 40)
    assert to_dict(ir.data) == to_dict(la.data) and to_dict(ir.model) == to_dict(la.model)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_recipes_scale_the_paper_ones_down(family):
    for method in ("ir", "la"):
        paper, tiny = load_config(f"vie_{family}_{method}"), load_config(f"vie_{family}_{method}_tiny")
        assert tiny.data.train == "builtin:train" and tiny.model.width == 16 and tiny.data.crop_size == 56
        assert tiny.model.backbone == paper.model.backbone and tiny.model.options == paper.model.options
        assert tiny.data.sampler == paper.data.sampler and tiny.data.modality == paper.data.modality == "rgb"
        assert tiny.method["name"] == paper.method["name"] and tiny.method["embed_dim"] == 128
        assert tiny.data.num_frames <= paper.data.num_frames
    la = load_config(f"vie_{family}_la_tiny").method
    assert la["num_clusters"] is None and la["background_neighbors"] is None and la["num_clusterings"] == 10
    # the two-stream recipes sample as their multi-frame stream's
    if family.startswith("twostream"):
        multi = {"twostream_s": "slow", "twostream_sf": "slowfast"}[family]
        for s in ("", "_tiny"):
            assert sampling(load_config(f"vie_{family}_la{s}")) == sampling(load_config(f"vie_{multi}_la{s}"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipes_sampler_fits_its_backbone(recipe):
    cfg = load_config(recipe)
    opts = dict(cfg.model.options)
    net = build_backbone(cfg.model.backbone, in_channels=in_channels(cfg.data.modality), width=8, **opts).eval()
    frames = train_clip_indices(np.random.default_rng(0), 250, 25.0, cfg.data)[0]  # pathways of one view
    clips = tuple(torch.randn(1, 3, len(idx), 32, 32) for idx in frames)
    with torch.no_grad():
        out = net(*clips)
    assert out.shape == (1, net.feat_dim) and torch.isfinite(out).all()
