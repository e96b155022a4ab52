"""kNN votes, top-k accuracy, multi-view averaging and the linear probe, against
hand-computed examples."""
import math

import pytest

import torch
import torch.nn.functional as F

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
    import numpy as np  # noqa: F401

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
