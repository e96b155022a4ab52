"""The protocols on arrays (``vidssl.eval.arrays``) give the numbers of ``vidssl eval`` on the same features."""
import numpy as np
import pytest
import torch

from vidssl.eval import arrays
from vidssl.eval.features import make_context
from vidssl.eval.protocols import evaluate_context

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.test_clips=2", "data.workers=0", "eval.cache=false", "eval.batch_size=8", "eval.linear_epochs=5",
        "eval.knn_k=5", "eval.retrieval_ks=[1,3]", "eval.retrieval_queries=0"]


@pytest.fixture(scope="module")
def ctx(synth_dir):
    ctx = make_context("random", str(synth_dir / "train.csv"), str(synth_dir / "test.csv"), TINY,
                       progress=False, recipe="ir_tiny")
    ctx.features("train"), ctx.features("test")
    return ctx


def numpy_inputs(ctx):
    (train_f, train_y), (test_f, test_y) = ctx.features("train"), ctx.features("test")
    return train_f.numpy(), train_y.numpy(), test_f.numpy(), test_y.numpy()


def same_metrics(ours: dict, theirs: dict, keys):
    for k in keys:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-9), k


def test_linear_probe_matches_the_protocol(ctx):
    out = arrays.linear_probe(*numpy_inputs(ctx), epochs=5)
    ref = evaluate_context("linear", ctx)
    same_metrics(out, ref, ("top1", "top5", "clip_top1", "video_top1", "views", "num_train", "num_test"))


def test_knn_matches_the_protocol(ctx):
    out = arrays.knn(*numpy_inputs(ctx), k=5)
    ref = evaluate_context("knn", ctx)
    same_metrics(out, ref, ("top1", "top5", "clip_top1", "nn1", "k", "tau", "views"))


def test_retrieval_matches_the_protocol(ctx):
    out = arrays.retrieval(*numpy_inputs(ctx), ks=[3, 1])
    ref = evaluate_context("retrieval", ctx)
    same_metrics(out, ref, ("recall@1", "recall@3", "top1", "views"))
    assert "picture" not in out


def test_one_vector_per_video_and_class_names(ctx):
    train_x, train_y, test_x, test_y = numpy_inputs(ctx)
    names = np.array(ctx.train.classes)
    pooled = arrays.knn(train_x.mean(1), train_y, test_x.mean(1), test_y, k=5)  # [N, D]
    named = arrays.knn(torch.from_numpy(train_x.mean(1)), names[train_y], test_x.mean(1), names[test_y].tolist(), k=5)
    assert pooled["views"] == 1
    same_metrics(named, pooled, ("top1", "top5", "nn1"))


def test_bad_arrays_are_clear_errors(ctx):
    train_x, train_y, test_x, test_y = numpy_inputs(ctx)
    with pytest.raises(ValueError, match="3 labels"):
        arrays.knn(train_x, train_y[:3], test_x, test_y)
    with pytest.raises(ValueError, match="differ in size"):
        arrays.retrieval(train_x, train_y, test_x[..., :5], test_y)
    with pytest.raises(ValueError, match=">= 0"):
        arrays.linear_probe(train_x, train_y - 1, test_x, test_y)
    nan = train_x.copy()
    nan[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        arrays.knn(nan, train_y, test_x, test_y)
