"""kNN votes, top-k accuracy, multi-view averaging and the linear probe, against
hand-computed examples."""
import math

import pytest
import torch
import torch.nn.functional as F

from vidssl.config import load_config
from vidssl.eval.features import video_embeddings
from vidssl.eval.knn import knn_predict, topk_accuracy
from vidssl.eval.linear import multiview_scores, train_linear


def test_knn_votes_by_hand():
    # Three training videos on the unit circle; classes 0, 1, 1.
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    q = F.normalize(torch.tensor([[1.0, 0.2]]), dim=1)
    tau = 0.5
    scores = knn_predict(train, labels, q, num_classes=2, k=2, tau=tau)
    s = (q @ train.T)[0]  # similarities to the three
    # top-2 are videos 0 (class 0) and 1 (class 1)
    expected = torch.tensor([[math.exp(s[0] / tau), math.exp(s[1] / tau)]])
    assert torch.allclose(scores, expected, rtol=1e-5)
    # k = 3: video 2 adds to class 1
    scores3 = knn_predict(train, labels, q, num_classes=2, k=3, tau=tau)
    assert torch.allclose(scores3[0, 1], expected[0, 1] + math.exp(s[2] / tau), rtol=1e-5)


def test_knn_weights_can_outvote_majority():
    # one very close neighbour of class 0 beats two far ones of class 1 at small tau
    train = F.normalize(torch.tensor([[1.0, 0.01], [0.2, 1.0], [0.1, 1.0]]), dim=1)
    labels = torch.tensor([0, 1, 1])
    q = torch.tensor([[1.0, 0.0]])
    assert knn_predict(train, labels, q, 2, k=3, tau=0.07).argmax(1).item() == 0
    assert knn_predict(train, labels, q, 2, k=3, tau=100.0).argmax(1).item() == 1


def test_knn_k_larger_than_train_set_and_chunks():
    g = torch.Generator().manual_seed(0)
    train = F.normalize(torch.randn(10, 4, generator=g), dim=1)
    labels = torch.randint(0, 3, (10,), generator=g)
    test = F.normalize(torch.randn(7, 4, generator=g), dim=1)
    a = knn_predict(train, labels, test, 3, k=200, tau=0.1, chunk=2)
    # reference: every training video votes
    w = ((test @ train.T) / 0.1).exp()
    ref = torch.stack([w[:, labels == c].sum(1) for c in range(3)], 1)
    assert torch.allclose(a, ref, rtol=1e-5)


def test_topk_accuracy_by_hand():
    scores = torch.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.35, 0.25, 0.4]])
    labels = torch.tensor([2, 0, 1])
    # top-1 hits: row 1 only; top-2 adds row 0 (0.4 is second); row 2's class is last
    assert topk_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(scores, labels, 5) == 1.0


def test_video_embedding_is_normalised_mean_of_normalised_views():
    f = torch.tensor([[[3.0, 0.0], [0.0, 0.5]]])  # one video, two views
    e = video_embeddings(f)
    assert torch.allclose(e, F.normalize(torch.tensor([[1.0, 1.0]]), dim=1))


def test_multiview_averages_softmax_over_views():
    model = torch.nn.Identity()
    feats = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # logits of two views
    probs, video = multiview_scores(model, feats)
    expected = (torch.tensor([2.0, 0.0]).softmax(0) + torch.tensor([0.0, 1.0]).softmax(0)) / 2
    assert torch.allclose(video[0], expected)
    assert probs.shape == (1, 2, 2)


def test_linear_probe_separates_separable_data():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 16, generator=g) * 3
    y = torch.arange(4).repeat(50)
    x = centres[y] + torch.randn(200, 16, generator=g)
    model = train_linear(x, y, 4, epochs=30, lr=0.1, batch_size=64)
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95
    # and it is a linear map after standardisation: chance on shuffled labels is far lower
    y_shuffled = y[torch.randperm(200, generator=g)]
    model2 = train_linear(x, y_shuffled, 4, epochs=30, lr=0.1, batch_size=64)
    xt = centres[y] + torch.randn(200, 16, generator=g)
    with torch.no_grad():
        acc2 = (model2(xt).argmax(1) == y_shuffled).float().mean().item()
    assert acc2 < 0.6


def test_recall_at_k_by_hand():
    from vidssl.eval.retrieval import recall_at_k

    gallery = torch.eye(4)  # four training videos along the axes, classes 0, 1, 2, 0
    gallery_labels = torch.tensor([0, 1, 2, 0])
    # query 0 (class 0): nearest are axis 1 (cls 1), then axis 0 (cls 0)
    # query 1 (class 2): nearest axis 2 (cls 2)
    # query 2 (class 1): order axis 3 (cls 0), axis 2 (cls 2), axis 0 (cls 0), axis 1 (cls 1)
    query = F.normalize(torch.tensor([[0.5, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.2, 0.1, 0.3, 1.0]]), dim=1)
    query_labels = torch.tensor([0, 2, 1])
    r = recall_at_k(query, query_labels, gallery, gallery_labels, [1, 2, 3, 4])
    assert r[1] == pytest.approx(1 / 3)
    assert r[2] == pytest.approx(2 / 3)
    assert r[3] == pytest.approx(2 / 3)
    assert r[4] == pytest.approx(1.0)


def _slow_persistence(clips: torch.Tensor) -> dict:
    """Loop reference of vidssl.eval.persistence.persistence_metrics."""
    n, c, _ = clips.shape
    items = [(i, j) for i in range(n) for j in range(c)]
    hits, within, between = 0, [], []
    for a, (i, j) in enumerate(items):
        best, best_video = -2.0, None
        for b, (k, m) in enumerate(items):
            if a == b:
                continue
            s = float(clips[i, j] @ clips[k, m])
            (within if i == k else between).append(s)
            if s > best:
                best, best_video = s, k
        hits += best_video == i
    return {"persistence_top1": hits / len(items), "within_cos": sum(within) / len(within),
            "between_cos": sum(between) / len(between)}


@pytest.mark.parametrize("n,c,d", [(2, 2, 3), (5, 3, 8), (7, 4, 16)])
def test_persistence_matches_a_loop_reference(n, c, d):
    from vidssl.eval.persistence import persistence_metrics

    g = torch.Generator().manual_seed(n * 100 + c)
    centres = torch.randn(n, 1, d, generator=g)
    clips = F.normalize(centres + 0.8 * torch.randn(n, c, d, generator=g), dim=-1)
    ref = _slow_persistence(clips)
    for got in (persistence_metrics(clips), persistence_metrics(clips, chunk=3)):  # one block, several
        for key, value in ref.items():
            assert got[key] == pytest.approx(value, abs=1e-5), key
        assert got["persistence_gap"] == pytest.approx(ref["within_cos"] - ref["between_cos"], abs=1e-5)
        assert got["persistence_chance"] == pytest.approx((c - 1) / (n * c - 1))


def test_persistence_invariants():
    from vidssl.errors import ConfigError
    from vidssl.eval.persistence import clip_features, persistence_metrics

    g = torch.Generator().manual_seed(0)
    # every clip of a video the same: perfectly persistent
    same = F.normalize(torch.randn(30, 1, 32, generator=g), dim=-1).expand(30, 4, 32)
    m = persistence_metrics(same)
    assert m["persistence_top1"] == 1.0 and m["within_cos"] == pytest.approx(1.0) and m["persistence_gap"] > 0.5
    # no video structure: near chance (3 / 799), and no gap
    noise = F.normalize(torch.randn(200, 4, 64, generator=g), dim=-1)
    m = persistence_metrics(noise)
    assert m["persistence_top1"] < 0.03 and abs(m["persistence_gap"]) < 0.01
    # views are clip-major: the crops of one clip are averaged, clips are kept apart
    views = torch.tensor([[[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.2, 1.0]]])  # 2 clips x 2 crops
    clips = clip_features(views, crops=2)
    assert clips.shape == (1, 2, 2) and clips[0, 0, 0] > 0.9 and clips[0, 1, 1] > 0.9
    with pytest.raises(ConfigError, match="test_clips"):
        persistence_metrics(noise[:, :1])
    with pytest.raises(ConfigError, match="crops"):
        clip_features(torch.zeros(2, 5, 3), crops=3)


def test_fewshot_support_draws_exactly_k_per_class_from_training_only():
    import numpy as np

    from vidssl.eval.fewshot import sample_support

    labels = np.array([0] * 7 + [1] * 5 + [2] * 9)
    for shots in (1, 3, 5):
        for draw in range(5):
            idx = sample_support(labels, shots, np.random.default_rng(draw))
            assert len(idx) == 3 * shots and len(set(idx.tolist())) == len(idx)
            assert idx.max() < len(labels)  # indices into the training set only
            assert np.bincount(labels[idx]).tolist() == [shots] * 3
    # different draws give different supports
    a = sample_support(labels, 3, np.random.default_rng(0))
    b = sample_support(labels, 3, np.random.default_rng(1))
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="class 1"):
        sample_support(labels, 6, np.random.default_rng(0))


# ----------------------------------------------------------------------------- multi-view, fractions, splits


class _FakeContext:
    """The part of EvalContext the frozen-feature protocols use: features, labels, config."""

    def __init__(self, train_f, train_y, test_f, test_y, **eval_overrides):
        from types import SimpleNamespace

        from vidssl.config import load_config

        self.cfg = load_config(None, [f"eval.{k}={v}" for k, v in eval_overrides.items()])
        self._f = {"train": (train_f, train_y), "test": (test_f, test_y)}
        self.train = SimpleNamespace(classes=[], labels=train_y.tolist())
        self.test = SimpleNamespace(classes=[], labels=test_y.tolist())

    def features(self, split):
        return self._f[split]

    def num_classes(self):
        return int(max(self._f["train"][1].max(), self._f["test"][1].max())) + 1


def test_multiview_metrics_video_level_averages_views_by_hand():
    from vidssl.eval.multiview import multiview_metrics

    # video 0 (class 0): views say 0 (0.6), 1 (0.9), 0 (0.7) -> clip hits 2/3; mean p0 = (0.6+0.1+0.7)/3 = 0.467
    #   so the video is classified 1 (a miss) although most of its views are right
    # video 1 (class 1): views say 0 (0.55), 1 (0.8), 0 (0.51) -> clip hits 1/3; mean p1 = (0.45+0.8+0.49)/3 = 0.58 -> hit
    p = torch.tensor([[[0.6, 0.4], [0.1, 0.9], [0.7, 0.3]],
                      [[0.55, 0.45], [0.2, 0.8], [0.51, 0.49]]])
    m = multiview_metrics(p, torch.tensor([0, 1]))
    assert m["clip_top1"] == pytest.approx(3 / 6)
    assert m["video_top1"] == m["top1"] == pytest.approx(1 / 2)
    assert m["views"] == 3 and m["top5"] == 1.0


def test_knn_reports_clip_and_video_level():
    from vidssl.eval import knn

    # two training videos on the axes; a test video whose views point 0, 0, 1 away from its class-1 mean
    train_f = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # [2, 1, 2]
    train_y = torch.tensor([0, 1])
    test_f = torch.tensor([[[1.0, 0.1], [1.0, 0.2], [0.0, 5.0]]])  # views normalised: two near class 0, one at 1
    ctx = _FakeContext(train_f, train_y, test_f, torch.tensor([0]), knn_k=1)
    m = knn.evaluate(ctx)
    assert m["clip_top1"] == pytest.approx(2 / 3)  # each view votes alone (k = 1)
    # the video embedding: mean of the unit views ~ (0.66, 0.43) -> nearest is class 0
    assert m["video_top1"] == m["top1"] == 1.0 and m["views"] == 3 and m["k"] == 1


def test_view_presets_set_test_clips_and_crops():
    from vidssl.config import load_config, parse_views
    from vidssl.errors import ConfigError
    from vidssl.eval.multiview import apply_view_preset

    assert parse_views("10x3") == (10, 3) and parse_views("5x1") == (5, 1) and parse_views(None) is None
    cfg = apply_view_preset(load_config(None, ["eval.views=10x3", "data.test_clips=2"]))
    assert (cfg.data.test_clips, cfg.data.test_crops) == (10, 3)  # the preset wins over data.*
    cfg = apply_view_preset(load_config(None, ["data.test_clips=2"]))
    assert (cfg.data.test_clips, cfg.data.test_crops) == (2, 1)  # null keeps data.*
    for bad in ("5x2", "0x1", "ten", "5"):
        with pytest.raises(ConfigError, match="eval.views"):
            load_config(None, [f"eval.views={bad}"])


def test_new_eval_keys_are_checked():
    from vidssl.config import load_config
    from vidssl.errors import ConfigError

    for item, key in [("eval.label_fraction=0", "label_fraction"), ("eval.label_fraction=1.5", "label_fraction"),
                      ("eval.fewshot_fractions=[0.05, 2]", "fewshot_fractions"),
                      ("eval.finetune_freeze_stages=6", "finetune_freeze_stages"),
                      ("eval.finetune_val_fraction=1", "finetune_val_fraction"),
                      ("eval.finetune_schedule=cosine", "finetune_schedule")]:
        with pytest.raises(ConfigError, match=key):
            load_config(None, [item])


def test_fraction_sampling_takes_the_right_share_of_every_class():
    import numpy as np

    from vidssl.eval.splits import sample_fraction

    labels = np.array([0] * 40 + [1] * 20 + [2] * 3)
    for fraction, want in [(0.05, [2, 1, 1]), (0.18, [7, 4, 1]), (0.5, [20, 10, 2]), (1.0, [40, 20, 3])]:
        # round(0.05 * 40) = 2; 0.05 * 20 = 1; 0.05 * 3 = 0.15 -> at least 1 (every class stays)
        # round(0.18 * 40) = 7; round(3.6) = 4; round(0.54) = 1; round(1.5) = 2 (banker's rounding)
        for draw in range(3):
            idx = sample_fraction(labels, fraction, np.random.default_rng(draw))
            assert len(set(idx.tolist())) == len(idx) and idx.max() < len(labels)
            assert np.bincount(labels[idx], minlength=3).tolist() == want
    a, b = (sample_fraction(labels, 0.18, np.random.default_rng(s)) for s in (0, 1))
    assert not np.array_equal(a, b)


def test_stratified_validation_split_is_disjoint_stratified_and_deterministic():
    import numpy as np

    from vidssl.eval.splits import stratified_split

    labels = np.array([0] * 20 + [1] * 10 + [2] * 1 + [3] * 2)
    tr, va = stratified_split(labels, 0.2, seed=3)
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[va], minlength=4).tolist() == [4, 2, 0, 0]  # round(0.2 n_c), keeping one to train
    assert np.bincount(labels[tr], minlength=4).tolist() == [16, 8, 1, 2]
    tr2, va2 = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=4)[1])
    assert len(stratified_split(labels, 0.0)[1]) == 0


def test_fewshot_and_fractions_train_only_on_training_videos(monkeypatch):
    from vidssl.eval import fewshot

    # feature value = a unique video id: train ids 0..29, test ids 100..111
    train_y = torch.arange(3).repeat_interleave(10)  # 10 per class
    train_f = torch.arange(30, dtype=torch.float).view(30, 1, 1)
    test_y = torch.arange(3).repeat(4)
    test_f = (100 + torch.arange(12, dtype=torch.float)).view(12, 1, 1)
    calls = []

    def fake_probe(tr_f, tr_y, te_f, te_y, num_classes, e, seed):
        ids = tr_f[:, 0, 0].long()
        calls.append((ids, tr_y))
        assert torch.equal(te_f, test_f)  # always tested on the whole test set
        assert torch.equal(tr_y, train_y[ids])  # labels travel with their videos
        return {"top1": len(ids) / 30, "top5": 1.0, "clip_top1": 0.0, "video_top1": len(ids) / 30, "views": 1}

    monkeypatch.setattr(fewshot, "probe_metrics", fake_probe)
    ctx = _FakeContext(train_f, train_y, test_f, test_y, fewshot_shots="[1, 2]", fewshot_fractions="[0.2, 1.0]",
                       fewshot_draws=3)
    out = fewshot.evaluate(ctx)
    for ids, _ in calls:
        assert ids.max() < 30  # never a test video
    sizes = [len(ids) for ids, _ in calls]
    assert sizes == [30] + [3] * 3 + [6] * 3 + [6] * 3  # all; 1-shot x 3; 2-shot x 3; 20 % = 2 per class x 3
    for ids, y in calls[1:]:
        assert len(set(torch.bincount(y).tolist())) == 1  # the same count of every class
    assert out["1shot"] == pytest.approx(0.1) and out["2shot"] == pytest.approx(0.2)
    assert out["frac0.2"] == pytest.approx(0.2) and out["frac0.2_std"] == pytest.approx(0.0, abs=1e-12)
    assert out["frac1"] == out["all"] == out["top1"] == 1.0 and out["views"] == 1


def test_feature_cache_key_follows_the_video_files(tmp_path, make_video):
    """A video rewritten at the same path (a re-rendered dataset) must not reuse cached features."""
    import os

    from vidssl.data.manifests import Manifest
    from vidssl.eval.features import EvalContext

    paths = [str(make_video(tmp_path / f"v{i}.mp4", frames=8)) for i in range(2)]
    m = Manifest(paths, [0, 1], source="t")
    ctx = EvalContext("random", None, load_config("supervised_tiny"), m, m, torch.device("cpu"))
    key = ctx.cache_key("train")
    assert ctx.cache_key("train") == key  # stable
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the same path, a newer file
    assert ctx.cache_key("train") != key
