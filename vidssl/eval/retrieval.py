"""Video retrieval with frozen video embeddings.

Each test video queries the training videos by cosine similarity of the video
embeddings (VIE Sec. 5, Fig. 2; CPC paper Fig. 6). Recall@k is the share of queries
with at least one video of the query's class among the k nearest. A picture of the
nearest neighbours of a few queries (middle frames; the query first, hits framed
green, misses red) is saved beside the metrics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidssl.eval.features import EvalContext, output_dir, video_embeddings
from vidssl.eval.multilabel import require_single_label


def recall_at_k(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
                gallery_labels: torch.Tensor, ks: list[int]) -> dict[int, float]:
    """query [M, D], gallery [N, D] (unit vectors) -> {k: recall@k}."""
    kmax = min(max(ks), gallery.shape[0])
    nearest = (query @ gallery.T).topk(kmax, dim=1).indices  # [M, kmax]
    hits = gallery_labels[nearest] == query_labels[:, None]  # [M, kmax]
    return {k: hits[:, :min(k, kmax)].any(1).float().mean().item() for k in ks}


def middle_frames(path: str, count: int = 1, backend: str = "pyav", span: float = 0.5) -> np.ndarray:
    """uint8 [count, H, W, 3]: ``count`` frames evenly spread over the middle ``span`` of the video
    (count = 1: the middle frame), decoded in one call."""
    from vidssl.data.video import probe, read_frames

    n = probe(path, backend=backend).num_frames
    if count == 1:
        indices = [max(0, n // 2)]
    else:
        lo, hi = (n - 1) * (0.5 - span / 2), (n - 1) * (0.5 + span / 2)
        indices = np.round(np.linspace(lo, hi, count)).astype(int).clip(0, max(0, n - 1)).tolist()
    return read_frames(path, indices, backend=backend)


def middle_frame(path: str, backend: str = "pyav") -> np.ndarray:
    """uint8 [H, W, 3]: the middle frame of a video."""
    return middle_frames(path, 1, backend)[0]


def save_neighbour_grid(out: Path, queries: list[int], neighbours: torch.Tensor, test_paths, train_paths,
                        hits: torch.Tensor, backend: str = "pyav") -> Path:
    """One row per query: the query's middle frame, then its nearest training videos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(queries), neighbours.shape[1] + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for r, q in enumerate(queries):
        axes[r, 0].imshow(middle_frame(test_paths[q], backend))
        axes[r, 0].set_title("query", fontsize=7)
        for c in range(neighbours.shape[1]):
            ax = axes[r, c + 1]
            ax.imshow(middle_frame(train_paths[int(neighbours[r, c])], backend))
            colour = "green" if hits[r, c] else "red"
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(3)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def retrieval_metrics(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                      ks: list[int]) -> dict:
    """Every test video [M, V, D] queries the training videos [N, V', D] (labels [M], [N]).

    Returns ``{"recall@k" for k in ks, "top1" (recall at the smallest k), "views"}``.
    """
    gallery, query = video_embeddings(train_f), video_embeddings(test_f)
    ks = sorted(ks)
    recalls = recall_at_k(query, test_y, gallery, train_y, ks)
    out = {f"recall@{k}": v for k, v in recalls.items()}
    out["top1"] = recalls[ks[0]]
    out["views"] = int(test_f.shape[1])  # views averaged into each query's embedding
    return out


def evaluate(ctx: EvalContext) -> dict:
    require_single_label(ctx, "retrieval")
    train_f, train_y = ctx.features("train")
    test_f, test_y = ctx.features("test")
    out = retrieval_metrics(train_f, train_y, test_f, test_y, ctx.cfg.eval.retrieval_ks)
    n_show = min(ctx.cfg.eval.retrieval_queries, len(test_y))
    if n_show > 0:
        rng = np.random.default_rng(ctx.cfg.train.seed)
        queries = sorted(rng.choice(len(test_y), size=n_show, replace=False).tolist())
        gallery, query = video_embeddings(train_f), video_embeddings(test_f[queries])
        nearest = (query @ gallery.T).topk(min(5, len(train_y)), dim=1).indices
        hits = train_y[nearest] == test_y[queries][:, None]
        picture = save_neighbour_grid(output_dir(ctx) / "retrieval.png", queries, nearest, ctx.test.paths,
                                      ctx.train.paths, hits, ctx.cfg.data.backend)
        out["picture"] = str(picture)
    return out
