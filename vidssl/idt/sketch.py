"""Count sketch (Charikar et al. 2002; used for the IDT Fisher vectors in Sec. 3.3 of the
dense-trajectory-clustering paper, its ref. [45]).

p(psi) = P psi with P [d_out, d_in] having exactly one non-zero per column: P[h(j), j] =
s(j), h uniform in [0, d_out), s uniform in {-1, +1}. P is never built densely: the sketch
is a scatter-add (per row) or a product with a sparse matrix (per batch).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class CountSketch:
    """Count sketch from ``d_in`` to ``d_out`` dimensions with a fixed seed.

    ``__call__(x [N, d_in] or [d_in]) -> float32 [N, d_out] or [d_out]``.
    ``hashes`` (int64 [d_in]) and ``signs`` (float32 [d_in]) are stored with the model.
    """

    def __init__(self, d_in: int, d_out: int = 2000, seed: int = 0,
                 hashes: np.ndarray | None = None, signs: np.ndarray | None = None):
        if d_in < 1 or d_out < 1:
            raise ValueError(f"CountSketch needs d_in >= 1 and d_out >= 1, got {d_in}, {d_out}")
        if hashes is None or signs is None:
            rng = np.random.default_rng(seed)
            hashes = rng.integers(0, d_out, size=d_in)
            signs = rng.integers(0, 2, size=d_in) * 2 - 1
        self.hashes = np.asarray(hashes, np.int64)
        self.signs = np.asarray(signs, np.float32)
        if self.hashes.shape != (d_in,) or self.signs.shape != (d_in,):
            raise ValueError(f"CountSketch hashes/signs must have shape ({d_in},), got "
                             f"{self.hashes.shape}, {self.signs.shape}")
        if self.hashes.min() < 0 or self.hashes.max() >= d_out:
            raise ValueError(f"CountSketch hashes must lie in [0, {d_out})")
        self.d_in, self.d_out = d_in, d_out
        # sparse [d_in, d_out] with one entry per row: x @ M is the sketch of every row of x
        self._matrix = sp.csr_matrix((self.signs, (np.arange(d_in), self.hashes)), shape=(d_in, d_out))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        single = x.ndim == 1
        x2 = x[None] if single else x
        if x2.ndim != 2 or x2.shape[1] != self.d_in:
            raise ValueError(f"CountSketch expects [N, {self.d_in}] input, got {x.shape}")
        out = np.asarray(x2 @ self._matrix, dtype=np.float32)
        return out[0] if single else out
