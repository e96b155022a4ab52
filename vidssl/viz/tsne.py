"""t-SNE picture of frozen video embeddings, coloured by any label column
(the CPC paper's Fig. 5 style; scikit-learn's TSNE)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def tsne_embedding(features: torch.Tensor, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """features [N, D] -> 2-D points [N, 2]; perplexity is capped for small N."""
    from sklearn.manifold import TSNE

    x = features.numpy().astype(np.float32)
    perplexity = float(min(perplexity, max(2.0, (len(x) - 1) / 3)))
    # exact gradients up to 1000 points: sklearn's Barnes-Hut is 2-20x slower there on 2 cores
    # (20 ms per iteration even for 10 points) and exact is also the more faithful picture
    method = "exact" if len(x) <= 1000 else "barnes_hut"
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                method=method).fit_transform(x)


def plot_tsne(points: np.ndarray, labels: np.ndarray, class_names: list[str], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    # integer labels come without class names: the label space is then max label + 1
    num_classes = max(len(class_names), int(labels.max(initial=-1)) + 1)
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    for c in np.unique(labels):
        m = labels == c
        name = class_names[c] if 0 <= c < len(class_names) else str(c)
        ax.scatter(points[m, 0], points[m, 1], s=10, color=cmap(int(c) % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, markerscale=1.5, loc="best", frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def save_tsne(ctx, split: str, out: Path, title: str = "") -> Path:
    """t-SNE picture of the video embeddings of ``split`` ('train' or 'test') of an
    :class:`vidssl.eval.features.EvalContext`, coloured by its labels."""
    from vidssl.eval.features import video_embeddings

    feats, labels = ctx.features(split)
    manifest = ctx.train if split == "train" else ctx.test
    points = tsne_embedding(video_embeddings(feats), seed=ctx.cfg.train.seed)
    return plot_tsne(points, labels.numpy(), manifest.classes, Path(out), title=title)
