"""Weighted k-nearest-neighbour classification on frozen video embeddings.

Wu et al. 2018 (instance discrimination), used by VIE and the dense-trajectory
paper: each test video votes with its k most similar training videos (cosine
similarity s of the video embeddings), each vote weighted by exp(s / tau);
defaults k = 200, tau = 0.07. 1-NN accuracy is reported beside it.

Video level (``top1``, ``video_top1``): the video embedding (normalised mean of the
normalised views, VIE Eq. 1) votes. Clip level (``clip_top1``): every test view votes
on its own against the same training video embeddings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vidssl.eval.features import EvalContext, video_embeddings
from vidssl.eval.multilabel import require_single_label
from vidssl.eval.multiview import multiview_metrics, topk_accuracy

__all__ = ["knn_predict", "knn_metrics", "topk_accuracy", "evaluate"]


def knn_predict(train_emb: torch.Tensor, train_labels: torch.Tensor, test_emb: torch.Tensor,
                num_classes: int, k: int = 200, tau: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Class scores [M, num_classes] of weighted kNN.

    train_emb: [N, D] and test_emb: [M, D], unit vectors; train_labels: [N].
    """
    k = min(k, train_emb.shape[0])
    out = []
    for start in range(0, test_emb.shape[0], chunk):
        sims = test_emb[start:start + chunk] @ train_emb.T  # [m, N]
        top, idx = sims.topk(k, dim=1)  # [m, k]
        weights = (top / tau).exp()
        scores = torch.zeros(sims.shape[0], num_classes, dtype=weights.dtype)
        scores.scatter_add_(1, train_labels[idx], weights)
        out.append(scores)
    return torch.cat(out)


def knn_metrics(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                num_classes: int, k: int = 200, tau: float = 0.07) -> dict:
    """Weighted kNN of test_f [M, V, D] against train_f [N, V', D] (labels [M], [N]).

    Returns :func:`vidssl.eval.multiview.multiview_metrics` (top1 = video level) with
    ``nn1``, ``k`` (as used: at most N) and ``tau``.
    """
    train_e, test_e = video_embeddings(train_f), video_embeddings(test_f)
    video_scores = knn_predict(train_e, train_y, test_e, num_classes, k, tau)  # [M, K]
    m, v = test_f.shape[:2]
    views = F.normalize(test_f, dim=-1).flatten(0, 1)  # [M * V, D], video-major
    clip_scores = knn_predict(train_e, train_y, views, num_classes, k, tau).view(m, v, -1)
    nn1 = train_y[(test_e @ train_e.T).argmax(1)]
    return {
        **multiview_metrics(clip_scores, test_y, video_scores),
        "nn1": (nn1 == test_y).float().mean().item(),
        "k": min(k, len(train_y)),
        "tau": tau,
    }


def evaluate(ctx: EvalContext) -> dict:
    require_single_label(ctx, "knn")
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")  # [M, V, D]
    return knn_metrics(train_f, train_y, test_f, test_y, ctx.num_classes(), ctx.cfg.eval.knn_k, ctx.cfg.eval.knn_tau)
