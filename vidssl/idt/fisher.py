"""PCA + diagonal GMM fitting and Fisher-vector encoding of IDT descriptors.

Sec. 3.3 and 4.2 of the dense-trajectory-clustering paper: PCA keeping 90% of the
variance, a diagonal GMM with K = 256 components fitted on 500 descriptors from each of
3500 random videos, Fisher vectors (gradients w.r.t. means and variances, Eq. 5-6)
averaged over the video's descriptors, power (alpha = 0.5) and L2 normalisation, then a
count sketch to 2000 dimensions. ``pca="per_type"`` is the IDT paper's (Wang & Schmid
2013) variant: each descriptor type (traj, HOG, HOF, MBHx, MBHy) gets its own PCA to half
its dimensions and its own GMM; the per-type Fisher vectors are normalised separately
and concatenated.

Fisher vectors are computed from streamed sufficient statistics (S0 = sum q, S1 = sum q x,
S2 = sum q x^2 per component), so a video's descriptors are read in chunks of any size.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from vidssl.errors import FisherModelError
from vidssl.fileio import atomic_write
from vidssl.idt.options import DESCRIPTORS, IDTOptions
from vidssl.idt.sketch import CountSketch

MODEL_FORMAT = "vidssl-idt-fv/1"


@dataclass
class FisherConfig:
    """Options of ``vidssl idt fit`` / ``encode``.

    pca: "variance" (one PCA over all 426 descriptor dims keeping ``variance`` = 0.9 of the
      variance, the paper's setting) or "per_type" (half the dims of each type, one GMM per
      type; IDT paper). components: K = 256. per_video: 500, max_videos: 3500 (Sec. 4.2).
    normalisation: "vlfeat" (default: 1/N, 1/sqrt(w_k) and 1/sqrt(2) factors of Eq. 5,
      like VLFeat's vl_fisher) or "unnormalised" (the authors' variant: averaged gradients
      without the 1/sqrt(w_k) and 1/sqrt(2) factors). alpha: power normalisation (0.5).
    sketch_dim: 2000 (count sketch; 0 = no sketch). seed: sampling, GMM init and sketch.
    """

    pca: str = "variance"
    variance: float = 0.9
    components: int = 256
    per_video: int = 500
    max_videos: int = 3500
    normalisation: str = "vlfeat"
    alpha: float = 0.5
    sketch_dim: int = 2000
    seed: int = 0
    gmm_iters: int = 100

    def __post_init__(self) -> None:
        if self.pca not in ("variance", "per_type"):
            raise FisherModelError(f"pca={self.pca!r}: allowed 'variance', 'per_type'")
        if self.normalisation not in ("vlfeat", "unnormalised"):
            raise FisherModelError(f"normalisation={self.normalisation!r}: allowed 'vlfeat', 'unnormalised'")
        if not 0 < self.variance <= 1:
            raise FisherModelError(f"variance={self.variance}: must be in (0, 1]")
        for name in ("components", "per_video", "max_videos", "gmm_iters"):
            if getattr(self, name) < 1:
                raise FisherModelError(f"{name}={getattr(self, name)}: must be >= 1")
        if self.sketch_dim < 0:
            raise FisherModelError(f"sketch_dim={self.sketch_dim}: must be >= 0")


def descriptor_groups(opts: IDTOptions, pca: str) -> dict[str, slice]:
    """Column groups of a trajectory row that get their own PCA + GMM."""
    cols = opts.columns()
    if pca == "per_type":
        return {k: cols[k] for k in DESCRIPTORS}
    return {"all": slice(cols["traj"].start, cols["mbhy"].stop)}


# ----------------------------------------------------------------------------------------
# one PCA + GMM
@dataclass
class GMMBlock:
    """PCA then diagonal GMM for one column group.

    mean [D_in], components [D, D_in] (PCA rows), weights [K], means [K, D], variances [K, D].
    """

    columns: slice
    mean: np.ndarray
    components: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    @property
    def k(self) -> int:
        return len(self.weights)

    def project(self, rows: np.ndarray) -> np.ndarray:
        """rows [N, 436] -> PCA coordinates float64 [N, D]."""
        x = np.asarray(rows[:, self.columns], np.float64)
        return (x - self.mean) @ self.components.T

    def posteriors(self, x: np.ndarray) -> np.ndarray:
        """Soft assignments q [N, K] of PCA coordinates x [N, D] (diagonal Gaussians)."""
        inv = 1.0 / self.variances  # [K, D]
        log_det = np.log(self.variances).sum(1)  # [K]
        quad = (x * x) @ inv.T - 2.0 * x @ (self.means * inv).T + (self.means ** 2 * inv).sum(1)
        log_p = np.log(self.weights) - 0.5 * (self.dim * np.log(2 * np.pi) + log_det + quad)
        log_p -= log_p.max(1, keepdims=True)
        q = np.exp(log_p)
        return q / q.sum(1, keepdims=True)


def fit_pca(x: np.ndarray, n_dims: Optional[int], variance: float) -> tuple[np.ndarray, np.ndarray]:
    """PCA by eigendecomposition of the covariance [D_in, D_in] (cheap for IDT's D_in <= 426
    whatever the number of samples). Keeps ``n_dims`` components, or the fewest whose
    explained variance reaches ``variance``. Returns mean [D_in], components [D, D_in]
    (sign fixed so that the largest-magnitude entry of each is positive)."""
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / max(len(x) - 1, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.maximum(vals[order], 0), vecs[:, order].T
    if n_dims is None:
        ratio = np.cumsum(vals) / max(vals.sum(), 1e-300)
        n_dims = int(np.searchsorted(ratio, variance - 1e-12) + 1)
    n_dims = max(1, min(n_dims, len(vals)))
    comps = vecs[:n_dims]
    signs = np.sign(comps[np.arange(n_dims), np.abs(comps).argmax(1)])
    return mean, comps * signs[:, None]


def fit_block(samples: np.ndarray, columns: slice, n_dims: Optional[int], variance: float,
              k: int, seed: int, iters: int) -> GMMBlock:
    """PCA (``n_dims`` dims, or enough for ``variance``) + diagonal GMM on sampled rows [N, 436]."""
    from sklearn.mixture import GaussianMixture

    x = np.asarray(samples[:, columns], np.float64)
    if len(x) < k:
        raise FisherModelError(f"{len(x)} sampled descriptors cannot fit a GMM with {k} components; "
                               "extract more videos or lower --components")
    mean, comps = fit_pca(x, n_dims, variance)
    z = (x - mean) @ comps.T
    gmm = GaussianMixture(n_components=k, covariance_type="diag", max_iter=iters, random_state=seed,
                          reg_covar=1e-6).fit(z)
    return GMMBlock(columns, mean, comps, gmm.weights_.astype(np.float64), gmm.means_.astype(np.float64),
                    gmm.covariances_.astype(np.float64))


# ----------------------------------------------------------------------------------------
# Fisher vectors from sufficient statistics
class FisherStats:
    """Streamed sufficient statistics of one video for one block.

    ``update(x [n, D])`` accumulates S0 [K], S1 [K, D], S2 [K, D] and the count N.
    """

    def __init__(self, block: GMMBlock):
        self.block = block
        self.n = 0
        self.s0 = np.zeros(block.k)
        self.s1 = np.zeros((block.k, block.dim))
        self.s2 = np.zeros((block.k, block.dim))

    def update(self, x: np.ndarray) -> None:
        if len(x) == 0:
            return
        q = self.block.posteriors(x)
        self.n += len(x)
        self.s0 += q.sum(0)
        self.s1 += q.T @ x
        self.s2 += q.T @ (x * x)

    def fisher(self, normalisation: str = "vlfeat") -> np.ndarray:
        """Unnormalised-by-power Fisher vector [2 K D]: mean gradients (K x D) then variance
        gradients (K x D). Zeros when the video has no descriptor."""
        b = self.block
        if self.n == 0:
            return np.zeros(2 * b.k * b.dim)
        sigma = np.sqrt(b.variances)
        mu = b.means
        s0 = self.s0[:, None]
        # sum_i q_ik (x_i - mu_k) / sigma_k  and  sum_i q_ik [((x_i - mu_k) / sigma_k)^2 - 1]
        g_mu = (self.s1 - mu * s0) / sigma
        g_var = (self.s2 - 2 * mu * self.s1 + mu * mu * s0) / b.variances - s0
        g_mu /= self.n
        g_var /= self.n
        if normalisation == "vlfeat":
            g_mu /= np.sqrt(b.weights)[:, None]
            g_var /= np.sqrt(2 * b.weights)[:, None]
        return np.concatenate([g_mu.ravel(), g_var.ravel()])


def power_l2(v: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Signed power normalisation |v|^alpha then L2 (zero vectors stay zero)."""
    v = np.sign(v) * np.abs(v) ** alpha
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


# ----------------------------------------------------------------------------------------
class FisherModel:
    """PCA + GMM blocks, the count sketch and the options; saved as one ``.npz`` (no pickle)."""

    def __init__(self, cfg: FisherConfig, opts: IDTOptions, blocks: Sequence[GMMBlock],
                 sketch: Optional[CountSketch] = None):
        self.cfg, self.opts, self.blocks = cfg, opts, list(blocks)
        self.fv_dim = sum(2 * b.k * b.dim for b in self.blocks)
        if sketch is None and cfg.sketch_dim:
            sketch = CountSketch(self.fv_dim, cfg.sketch_dim, seed=cfg.seed)
        self.sketch = sketch

    @property
    def out_dim(self) -> int:
        return self.sketch.d_out if self.sketch is not None else self.fv_dim

    @classmethod
    def fit(cls, samples: np.ndarray, cfg: FisherConfig, opts: IDTOptions) -> "FisherModel":
        """samples: float [N, 436] trajectory rows from :func:`sample_rows`."""
        groups = descriptor_groups(opts, cfg.pca)
        blocks = []
        for i, (name, cols) in enumerate(groups.items()):
            n_dims = (cols.stop - cols.start) // 2 if cfg.pca == "per_type" else None
            blocks.append(fit_block(samples, cols, n_dims, cfg.variance, cfg.components, cfg.seed + i,
                                    cfg.gmm_iters))
        return cls(cfg, opts, blocks)

    def encode(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Fisher vector of one video from chunks of its rows ([n, 436] each):
        per block FV -> power + L2; blocks concatenated (L2 again when several) -> sketch.
        Returns float32 [out_dim]."""
        stats = [FisherStats(b) for b in self.blocks]
        for rows in chunks:
            if rows.ndim != 2 or rows.shape[1] != self.opts.row_dim:
                raise FisherModelError(f"descriptor rows must be [n, {self.opts.row_dim}], got {rows.shape}")
            for st in stats:
                st.update(st.block.project(rows))
        parts = [power_l2(st.fisher(self.cfg.normalisation), self.cfg.alpha) for st in stats]
        fv = np.concatenate(parts)
        if len(parts) > 1:
            n = np.linalg.norm(fv)
            fv = fv / n if n > 0 else fv
        out = self.sketch(fv) if self.sketch is not None else fv
        return np.asarray(out, np.float32)

    # -- file I/O -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        arrays = {}
        for i, b in enumerate(self.blocks):
            arrays.update({f"b{i}_mean": b.mean, f"b{i}_components": b.components, f"b{i}_weights": b.weights,
                           f"b{i}_means": b.means, f"b{i}_variances": b.variances,
                           f"b{i}_columns": np.asarray([b.columns.start, b.columns.stop])})
        if self.sketch is not None:
            arrays["sketch_hashes"] = self.sketch.hashes
            arrays["sketch_signs"] = self.sketch.signs
        meta = {"format": MODEL_FORMAT, "fisher": asdict(self.cfg), "idt": self.opts.to_dict(),
                "blocks": len(self.blocks)}
        arrays["meta"] = np.asarray(json.dumps(meta))
        return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FisherModel":
        path = Path(path)
        if not path.is_file():
            raise FisherModelError(f"Fisher-vector model {path} does not exist (run `vidssl idt fit` first)")
        try:
            z = np.load(path, allow_pickle=False)
            meta = json.loads(str(z["meta"]))
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear error
            raise FisherModelError(f"{path} is not a vidssl IDT Fisher model: {e}") from None
        if meta.get("format") != MODEL_FORMAT:
            raise FisherModelError(f"{path}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
        cfg = FisherConfig(**meta["fisher"])
        opts = IDTOptions.from_dict(meta["idt"])
        blocks = []
        for i in range(meta["blocks"]):
            c = z[f"b{i}_columns"]
            blocks.append(GMMBlock(slice(int(c[0]), int(c[1])), z[f"b{i}_mean"], z[f"b{i}_components"],
                                   z[f"b{i}_weights"], z[f"b{i}_means"], z[f"b{i}_variances"]))
        sketch = None
        if "sketch_hashes" in z:
            fv_dim = sum(2 * b.k * b.dim for b in blocks)
            sketch = CountSketch(fv_dim, cfg.sketch_dim, hashes=z["sketch_hashes"], signs=z["sketch_signs"])
        return cls(cfg, opts, blocks, sketch)


def sample_rows(files: Sequence[str | os.PathLike], cfg: FisherConfig, load) -> np.ndarray:
    """Random sample for fitting: ``per_video`` rows from each of up to ``max_videos`` random
    files (all rows of a video that has fewer). ``load(path) -> rows [n, 436]``."""
    rng = np.random.default_rng(cfg.seed)
    files = list(files)
    chosen = rng.permutation(len(files))[: cfg.max_videos]
    out = []
    for i in sorted(chosen):
        rows = load(files[i])
        if len(rows) > cfg.per_video:
            rows = rows[np.sort(rng.choice(len(rows), cfg.per_video, replace=False))]
        out.append(np.asarray(rows, np.float32))
    if not out or sum(len(r) for r in out) == 0:
        raise FisherModelError("no descriptors to fit on: every sampled video has 0 trajectories")
    return np.concatenate(out)
