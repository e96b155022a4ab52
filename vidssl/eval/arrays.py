"""The frozen-feature protocols on arrays: features from anywhere, the numbers of ``vidssl eval``.

Features are numpy arrays or tensors ``[N, D]`` (one vector per video) or ``[N, V, D]``
(V views per video, as :meth:`vidssl.eval.features.EvalContext.features` gives them);
labels ``[N]`` are integers >= 0 or class names (numbered in sorted order of the names
of both splits). Each function runs the implementation of the protocol of the same name
(:mod:`vidssl.eval.linear`, :mod:`vidssl.eval.knn`, :mod:`vidssl.eval.retrieval`) with
the defaults of ``eval.*`` (:class:`vidssl.config.EvalConfig`), so the same features and
options give the same metrics as ``vidssl eval``::

    from vidssl.eval import arrays
    arrays.linear_probe(train_x, train_y, test_x, test_y, epochs=50)   # {"top1", "top5", ...}
    arrays.knn(train_x, train_y, test_x, test_y, k=20)
    arrays.retrieval(train_x, train_y, test_x, test_y, ks=[1, 5])
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch

from vidssl.config import EvalConfig
from vidssl.eval.knn import knn_metrics
from vidssl.eval.linear import probe_metrics
from vidssl.eval.retrieval import retrieval_metrics

_E = EvalConfig()  # the defaults of eval.*


def linear_probe(train_x, train_y, test_x, test_y, *, num_classes: int | None = None,
                 epochs: int = _E.linear_epochs, lr: float = _E.linear_lr, weight_decay: float = _E.linear_wd,
                 batch_size: int = _E.linear_batch_size, seed: int = 0) -> dict:
    """Linear probe (``vidssl eval linear``): trained on every training view, tested on every
    test view. ``seed`` is the config's ``train.seed``. Returns ``top1`` (video level),
    ``top5``, ``clip_top1``, ``video_top1``, ``views``, ``num_train``, ``num_test``."""
    train_f, train_l, test_f, test_l, num = _inputs(train_x, train_y, test_x, test_y, num_classes)
    e = replace(_E, linear_epochs=epochs, linear_lr=lr, linear_wd=weight_decay, linear_batch_size=batch_size)
    return _counted(probe_metrics(train_f, train_l, test_f, test_l, num, e, seed), train_f, test_f)


def knn(train_x, train_y, test_x, test_y, *, num_classes: int | None = None, k: int = _E.knn_k,
        tau: float = _E.knn_tau) -> dict:
    """Weighted kNN (``vidssl eval knn``) on cosine similarity of the video embeddings (the
    normalised mean of the normalised views). Returns ``top1``, ``top5``, ``clip_top1``,
    ``video_top1``, ``views``, ``nn1``, ``k``, ``tau``, ``num_train``, ``num_test``."""
    train_f, train_l, test_f, test_l, num = _inputs(train_x, train_y, test_x, test_y, num_classes)
    return _counted(knn_metrics(train_f, train_l, test_f, test_l, num, k, tau), train_f, test_f)


def retrieval(train_x, train_y, test_x, test_y, *, ks: Sequence[int] = tuple(_E.retrieval_ks)) -> dict:
    """Retrieval (``vidssl eval retrieval``, without the picture): every test video queries the
    training videos. Returns ``recall@k`` for each k, ``top1`` (recall at the smallest k),
    ``views``, ``num_train``, ``num_test``."""
    if not ks or min(ks) < 1:
        raise ValueError(f"retrieval needs ks >= 1 (got {list(ks)})")
    train_f, train_l, test_f, test_l, _ = _inputs(train_x, train_y, test_x, test_y, None)
    return _counted(retrieval_metrics(train_f, train_l, test_f, test_l, list(ks)), train_f, test_f)


def as_features(x, name: str = "features") -> torch.Tensor:
    """[N, D] or [N, V, D] (numpy or torch) -> float32 tensor [N, V, D] on the CPU."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().float()
    if t.ndim == 2:
        t = t[:, None]
    if t.ndim != 3 or t.shape[0] == 0 or t.shape[-1] == 0:
        raise ValueError(f"{name} must be [N, D] or [N, V, D] with N, D >= 1 (got {list(t.shape)})")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} hold NaN or infinite values (videos that could not be decoded?)")
    return t


def as_labels(train_y, test_y) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Labels of both splits -> (long [N], long [M], class names or []). Class names are
    numbered in sorted order of the names found in either split."""
    a, b = (np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y) for y in (train_y, test_y))
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"labels must be 1-D (got {list(a.shape)} and {list(b.shape)})")
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if min(a.min(initial=0), b.min(initial=0)) < 0:
            raise ValueError("labels must be >= 0 (every video needs a label)")
        return torch.as_tensor(a, dtype=torch.long), torch.as_tensor(b, dtype=torch.long), []
    if a.dtype.kind in "fb" or b.dtype.kind in "fb":
        raise ValueError(f"labels must be integers or class names (got {a.dtype} and {b.dtype})")
    classes = sorted({str(v) for v in a} | {str(v) for v in b})
    lookup = {c: i for i, c in enumerate(classes)}
    a, b = ([lookup[str(v)] for v in y] for y in (a, b))
    return torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long), classes


def _inputs(train_x, train_y, test_x, test_y, num_classes: int | None):
    """(train [N, V, D], labels [N], test [M, V', D], labels [M], number of classes), checked."""
    train_f, test_f = as_features(train_x, "train features"), as_features(test_x, "test features")
    if train_f.shape[-1] != test_f.shape[-1]:
        raise ValueError(f"train and test features differ in size ({train_f.shape[-1]} vs {test_f.shape[-1]})")
    train_l, test_l, classes = as_labels(train_y, test_y)
    for name, f, y in (("train", train_f, train_l), ("test", test_f, test_l)):
        if len(f) != len(y):
            raise ValueError(f"{name}: {len(f)} feature rows but {len(y)} labels")
    top = int(max(train_l.max(), test_l.max())) + 1
    count = max(len(classes), top) if num_classes is None else int(num_classes)
    if count < top:
        raise ValueError(f"num_classes={count} but a label is {top - 1}")
    return train_f, train_l, test_f, test_l, count


def _counted(metrics: dict, train_f: torch.Tensor, test_f: torch.Tensor) -> dict:
    return {**metrics, "num_train": int(train_f.shape[0]), "num_test": int(test_f.shape[0])}
