"""Weighted k-nearest-neighbour classification on frozen video embeddings.

Wu et al. 2018 (instance discrimination), used by VIE and the dense-trajectory
paper: each test video votes with its k most similar training videos (cosine
similarity s of the video embeddings), each vote weighted by exp(s / tau);
defaults k = 200, tau = 0.07. 1-NN accuracy is reported beside it.
"""
from __future__ import annotations

import torch

from vidssl.eval.features import EvalContext, video_embeddings


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


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, scores.shape[1])
    hit = (scores.topk(k, dim=1).indices == labels[:, None]).any(1)
    return hit.float().mean().item()


def evaluate(ctx: EvalContext) -> dict:
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")
    train_e, test_e = video_embeddings(train_f), video_embeddings(test_f)
    num_classes = max(len(ctx.train.classes), int(train_y.max()) + 1, int(test_y.max()) + 1)
    scores = knn_predict(train_e, train_y, test_e, num_classes, ctx.cfg.eval.knn_k, ctx.cfg.eval.knn_tau)
    nn1 = train_y[(test_e @ train_e.T).argmax(1)]
    return {
        "top1": topk_accuracy(scores, test_y, 1),
        "top5": topk_accuracy(scores, test_y, 5),
        "nn1": (nn1 == test_y).float().mean().item(),
        "k": min(ctx.cfg.eval.knn_k, len(train_y)),
        "tau": ctx.cfg.eval.knn_tau,
        "views": int(test_f.shape[1]),
    }
