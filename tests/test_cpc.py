"""Video CPC: the NCE loss against a slow loop, the causality of every context model, the
sequence sampler, the stacked-frame encoder and a few training steps on the engine."""
import math

import numpy as np
import pytest
import torch

from vidssl.config import DataConfig, load_recipe
from vidssl.data.sampling import test_clip_indices, train_clip_indices
from vidssl.errors import BackboneError, ConfigError, CPCLossError
from vidssl.losses.cpc_nce import cpc_nce
from vidssl.models import build_backbone
from vidssl.models.cpc_context import CONTEXT_MODELS, build_context


def _reference(pred, cand, offset, hard):
    """-log softmax of every valid prediction, written as loops (Eq. 1), averaged."""
    b, T, K, _ = pred.shape
    flat = cand.reshape(-1, cand.shape[-1])
    losses, hits = [], {k: [] for k in range(1, K + 1)}
    for i in range(b):
        for t in range(T):
            for k in range(1, K + 1):
                if t + k >= T:
                    continue
                pos = (offset + i) * T + t + k
                rows = [m for m in range(len(flat)) if hard or m // T != offset + i or m == pos]
                s = torch.stack([pred[i, t, k - 1] @ flat[m] for m in rows]).double()
                p = rows.index(pos)
                losses.append(-(s[p] - torch.logsumexp(s, 0)))
                hits[k].append(float(s.argmax() == p))
    return torch.stack(losses).mean(), torch.tensor([np.mean(hits[k]) for k in hits])


@pytest.mark.parametrize("b,T,K,D,hard", [(2, 3, 2, 4, True), (3, 5, 4, 6, True), (3, 5, 2, 6, False),
                                          (1, 4, 3, 5, True), (2, 6, 1, 3, False)])
def test_nce_matches_slow_reference(b, T, K, D, hard):
    g = torch.Generator().manual_seed(b * 100 + T * 10 + K)
    pred, z = torch.randn(b, T, K, D, generator=g), torch.randn(b, T, D, generator=g)
    loss, acc = cpc_nce(pred, z, hard_negatives=hard, return_accuracy=True)
    ref, ref_acc = _reference(pred, z, 0, hard)
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(acc.double(), ref_acc.double())


def test_nce_with_gathered_candidates_matches_reference():
    g = torch.Generator().manual_seed(7)
    cand = torch.randn(5, 4, 3, generator=g)
    pred = torch.randn(2, 4, 3, 3, generator=g)
    for hard in (True, False):
        loss = cpc_nce(pred, cand[2:4], cand, offset=2, hard_negatives=hard)
        torch.testing.assert_close(loss.double(), _reference(pred, cand, 2, hard)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("b,T", [(2, 3), (4, 10), (25, 10)])
def test_equal_scores_give_log_of_candidates(b, T):
    pred, z = torch.zeros(b, T, T - 1, 8), torch.randn(b, T, 8)
    assert cpc_nce(pred, z).item() == pytest.approx(math.log(b * T), rel=1e-6)
    assert cpc_nce(pred, z, hard_negatives=False).item() == pytest.approx(math.log((b - 1) * T + 1), rel=1e-6)


def test_nce_rejects_bad_shapes():
    with pytest.raises(CPCLossError):
        cpc_nce(torch.zeros(2, 3, 3, 4), torch.zeros(2, 3, 4))  # K > T - 1
    with pytest.raises(CPCLossError):
        cpc_nce(torch.zeros(2, 3, 2, 4), torch.zeros(2, 3, 5))


@pytest.mark.parametrize("name", sorted(CONTEXT_MODELS))
@pytest.mark.parametrize("training", [True, False])
def test_context_sees_only_the_past(name, training):
    """c_t is unchanged when any later h changes, and changes when an earlier one does."""
    torch.manual_seed(0)
    model = build_context(name, 6).train(training)
    T = 5
    h = torch.randn(3, 6, T, 4, 4)
    with torch.no_grad():
        base = model(h)
        for s in range(T):
            h2 = h.clone()
            h2[:, :, s] += torch.randn_like(h2[:, :, s]) * 3
            out = model(h2)
            for t in range(T):
                same = torch.allclose(out[:, :, t], base[:, :, t], atol=1e-5)
                assert same == (t < s), (name, training, s, t)


def test_sequence_sampler_places_overlapping_segments():
    cfg = DataConfig(sampler="sequence", num_frames=10, stride=1, views=10, fps=None)
    for seed in range(5):
        plan = train_clip_indices(np.random.default_rng(seed), 100, 25.0, cfg)
        starts = [clip[0][0] for clip in plan]
        assert len(plan) == 10 and all(len(c[0]) == 10 for c in plan)
        assert np.all(np.diff(starts) == 5) and starts[0] + 9 * 5 + 10 <= 100  # F / 2 overlap, inside the video
        assert all(np.all(np.diff(c[0]) == 1) for c in plan)
    diff = DataConfig(sampler="sequence", num_frames=8, stride=2, views=6, hop=8, modality="diff")
    plan = train_clip_indices(np.random.default_rng(0), 64, 25.0, diff)
    assert all(len(c[0]) == 9 for c in plan) and plan[1][0][0] - plan[0][0][0] == 8
    short = train_clip_indices(np.random.default_rng(0), 20, 25.0, cfg)  # 20 < 55 frames: loop rule
    assert short[0][0][0] == 0 and max(int(c[0].max()) for c in short) < 20
    test = test_clip_indices(100, 25.0, cfg, 15)  # test time: uniformly spaced single segments
    assert len(test) == 15 and all(len(c[0]) == 10 for c in test)


def test_stacked_encoder_stacks_frames_into_channels():
    net = build_backbone("stacked2d18", in_channels=2, width=8, frames=5)
    assert net.stages["conv1"][0].in_channels == 10
    x = torch.randn(3, 2, 5, 32, 32)
    pooled, maps = net(x, return_stages=True)
    assert pooled.shape == (3, 64) and maps["conv5"].shape[:3] == (3, 64, 1)
    torch.testing.assert_close(pooled, maps["conv5"].mean(dim=(2, 3, 4)))
    # the stacking is a reshape: the same numbers as the 2D net on [N, C*F, H, W]
    y = net.stages["conv1"](x.reshape(3, 10, 32, 32))
    torch.testing.assert_close(maps["conv1"][:, :, 0], y)
    with pytest.raises(BackboneError):
        net(torch.randn(3, 2, 4, 32, 32))


def test_views_must_equal_segments():
    with pytest.raises(ConfigError, match="method.segments"):
        load_recipe("cpc_tiny", ["data.views=4"])
    cfg = load_recipe("cpc_ucf101")
    assert cfg.method["segments"] == cfg.data.views == 10 and cfg.data.hop == 5


def test_cpc_trains_and_logs_accuracy_per_step(tmp_path):
    """A few steps on the built-in dataset: finite losses, acc_k1..acc_kK logged."""
    import json

    from vidssl.engine.trainer import train

    cfg = load_recipe("cpc_tiny", ["train.epochs=1", "train.max_steps_per_epoch=3", "train.log_every=1",
                                   "data.workers=0", "data.batch_size=4", "train.progress=false",
                                   "optim.warmup_epochs=0"])
    run = train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert steps and all(math.isfinite(r["loss"]) for r in steps)
    assert all(f"acc_k{k}" in steps[-1] for k in range(1, 6)) and "acc_k6" not in steps[-1]
    # first loss near log(B T) = log(24): random init scores are small
    assert steps[0]["loss"] == pytest.approx(math.log(24), abs=1.0)


def test_colour_dropping_keeps_one_channel():
    from vidssl.data.transforms import drop_colors

    x = torch.rand(4, 3, 8, 8)
    y = drop_colors(x, 1, seed=3)
    assert torch.equal(y[:, 1], x[:, 1])
    for c in (0, 2):  # the mean of the kept channel plus noise of 1/100 of its spread
        assert (y[:, c] - x[:, 1].mean()).abs().max() < 0.1 * x[:, 1].std()
    assert torch.equal(drop_colors(x, 1, seed=3), y)


def test_shared_draw_gives_every_segment_the_same_crop(tmp_path):
    from vidssl.data.synthetic import write_video
    from vidssl.data.datasets import VideoDataset
    from vidssl.data.manifests import Manifest

    frames = np.random.default_rng(0).integers(0, 255, (40, 48, 48, 3), dtype=np.uint8)
    frames[:] = frames[:1]  # a still video: every segment shows the same pixels
    path = tmp_path / "still.mp4"
    write_video(path, frames)
    m = Manifest(paths=[str(path)], labels=[0], classes=["a"], columns={}, source="test")
    base = dict(sampler="sequence", num_frames=4, stride=1, views=4, crop_size=24, modality="rgb")
    from vidssl.config import AugmentConfig

    aug = AugmentConfig(short_side=(48, 96), color_p=0.0, grayscale_p=0.0, blur_p=0.0)
    shared = VideoDataset(m, DataConfig(**base, shared_draw=True, augment=aug))[(0, 1)]["clips"][0]
    own = VideoDataset(m, DataConfig(**base, augment=aug))[(0, 1)]["clips"][0]
    assert all(torch.allclose(shared[v], shared[0], atol=0.05) for v in range(4))
    assert not all(torch.allclose(own[v], own[0], atol=0.05) for v in range(4))


def test_pooled_supervised_classifies_the_mean_feature():
    from vidssl.methods.supervised import Supervised, SupervisedConfig

    torch.manual_seed(0)
    net = build_backbone("stacked2d18", in_channels=3, width=4, frames=2)
    m = Supervised(SupervisedConfig(dropout=0.0, pool_views=True), net, num_samples=2, num_classes=3).eval()
    clips = (torch.randn(2, 3, 3, 2, 16, 16),)
    scores = m.predict({"clips": clips, "label": torch.tensor([0, 1])})
    with torch.no_grad():
        feats = net(clips[0].flatten(0, 1)).view(2, 3, -1).mean(1)
        ref = m.classifier(feats).softmax(-1)
    torch.testing.assert_close(scores, ref)
