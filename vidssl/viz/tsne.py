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
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def plot_tsne(points: np.ndarray, labels: np.ndarray, class_names: list[str], out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
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
