"""Stratified subsets of the training videos: few-shot supports, label fractions, validation splits.

All three draw from the *training* labels only (indices into the training manifest),
so no test video can enter a support set, a label fraction or a validation split.
Every class present keeps at least one training video.

- :func:`sample_support`: exactly k videos per class (dense-trajectory paper Sec. 4.4,
  the protocol of Chen et al. 2019);
- :func:`sample_fraction`: ``max(1, round(f * n_c))`` videos of each class c with n_c
  videos (CPC paper Sec. 5.3, Fig. 4: 5 % and 18 % of the labels);
- :func:`stratified_split`: a deterministic train / validation split with
  ``min(n_c - 1, round(f * n_c))`` validation videos per class (early stopping).
"""
from __future__ import annotations

import numpy as np

from vidssl.errors import ConfigError


def _classes(labels: np.ndarray):
    labels = np.asarray(labels)
    for c in np.unique(labels):
        yield int(c), np.flatnonzero(labels == c)


def sample_support(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of exactly ``shots`` videos of every class present in ``labels`` [N]."""
    picks = []
    for c, members in _classes(labels):
        if len(members) < shots:
            raise ConfigError(f"{shots}-shot needs {shots} training videos of class {c}; it has {len(members)} "
                              "(lower eval.fewshot_shots, e.g. eval.fewshot_shots=[1,5])")
        picks.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(picks))


def fraction_count(n: int, fraction: float) -> int:
    """Videos kept of a class of ``n``: ``round(fraction * n)``, at least 1 (every class stays)."""
    return max(1, min(n, int(round(fraction * n))))


def sample_fraction(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of :func:`fraction_count` (n_c, fraction) videos of every class c of ``labels`` [N]."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"bad label fraction {fraction!r} (must be in (0, 1])")
    picks = [rng.choice(members, size=fraction_count(len(members), fraction), replace=False)
             for _, members in _classes(labels)]
    return np.sort(np.concatenate(picks))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), sorted and disjoint, covering ``labels`` [N].

    Class c gives ``min(n_c - 1, round(val_fraction * n_c))`` videos to validation, so
    every class keeps a training video; the draw depends only on ``seed`` and the labels.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"bad validation fraction {val_fraction!r} (must be in [0, 1))")
    rng = np.random.default_rng([seed, 0x5EED])
    train, val = [], []
    for _, members in _classes(labels):
        order = rng.permutation(members)
        k = min(len(members) - 1, int(round(val_fraction * len(members))))
        val.append(order[:k])
        train.append(order[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
