"""Video Local Aggregation (dense-trajectory paper Sec. 3.2-3.3, 4.2, Tables 1, 5, 6; VIE Sec. 3, App. A).

The IR model (:mod:`vidssl.methods.ir`: backbone, linear 128-d embedding, memory
bank) trained with the LA loss (:mod:`vidssl.losses.local_aggregation`) instead:

- before the first LA step, and (``recluster: true``) at the start of every epoch,
  m k-means clusterings (m = 3, K = 6000 for Kinetics, Sec. 4.2) of the features named
  by ``cluster_source`` give every video m cluster labels (buffer ``cluster_labels``:
  long [m, N], part of the checkpoint);
- for an embedding v of video i: background neighbours = top-k (k = 4096) of
  v . bank; close neighbours = videos sharing i's cluster in any clustering, inside
  the background set; loss = -log(sum_{C n B} e^{s/tau} / sum_B e^{s/tau}).

Cluster sources (``cluster_source``; each maps the method to an [N, F] array
aligned with the training manifest, see ``CLUSTER_SOURCES``):

- ``bank``: the memory bank [N, 128] — plain Video LA;
- ``file``: saved features (``cluster_features``: .npz / .npy / .pt of N rows), e.g. the
  IDT Fisher-vector sketches [N, 2000] of ``vidssl idt encode`` — "Video LA + IDT prior":
  the network "is first trained until convergence using the fixed IDT clusters"
  (Sec. 1), so that recipe sets ``recluster: false``;
- ``joint``: [bank ; joint_weight x IDT] with both parts l2-normalised
  (:func:`~vidssl.methods.clustering.joint_space`) — the final tuning "in the joint IDT
  and 3D ConvNet space with the iterative Video LA approach" (Sec. 1, 3.3; App. A,
  Table 5 "Ours\\Tune"), re-clustered every epoch.

Adding a source is one entry in ``CLUSTER_SOURCES``. With the engine the file of the
``file`` / ``joint`` sources is checked against the training manifest (row count, order,
videos without descriptors: :func:`~vidssl.methods.feature_file.check_alignment`)
before anything is trained.

Initialisation from IR (the papers warm up with 40 epochs of IR): either a
separate IR run and ``train.init_from=IR_CHECKPOINT`` (its ``backbone.*``,
``embed.*``, ``memory_bank.bank`` and ``ir_loss.log_z`` keys match this method's),
or ``ir_warmup_epochs: E`` in one run: epochs 0..E-1 use the IR loss and no
clustering, LA starts at epoch E. Clusters that come with ``train.init_from`` (an
earlier LA stage) are dropped: a run clusters its own source before its first step.

``num_clusters: null`` and ``background_neighbors: null`` take K and k from the
number of training videos by :func:`~vidssl.methods.la_regime.la_regime`, which keeps
the paper's regime at any N (clusters much finer than classes, a close set of ~3 % of
the background; K = 5854, k = 4096 at Kinetics' size); set them to fix K and k (6000
and 4096 in the paper recipe). Every clustering is reported in the run's log with its
size balance (largest cluster's share, size entropy), with a warning when one cluster
holds most videos (:func:`~vidssl.methods.clustering.balance_warning`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np
import torch
import torch.nn as nn

from vidssl.errors import ConfigError
from vidssl.losses.local_aggregation import local_aggregation_loss
from vidssl.methods import ir
from vidssl.methods.clustering import (FEATURE_TRANSFORMS, balance_warning, cluster_balance, cluster_features,
                                       joint_space, transform_features)
from vidssl.methods.la_regime import la_regime
from vidssl.methods.feature_file import check_alignment, load_feature_file


def _bank_features(method: "LocalAggregation") -> np.ndarray:
    return method.memory_bank.bank.detach().float().cpu().numpy()


def _file_features(method: "LocalAggregation") -> np.ndarray:
    return transform_features(method.file_features(), method.cfg.cluster_transform)


def _joint_features(method: "LocalAggregation") -> np.ndarray:
    # [N, 128 + F]: both parts unit rows, the file part scaled by joint_weight (Sec. 3.3)
    return joint_space([_bank_features(method), _file_features(method)], [1.0, method.cfg.joint_weight])


# name -> function(method) -> float32 [N, F] aligned with the training manifest
CLUSTER_SOURCES: dict[str, Callable[["LocalAggregation"], np.ndarray]] = {
    "bank": _bank_features,
    "file": _file_features,
    "joint": _joint_features,
}
# sources that read cluster_features
SOURCES_WITH_FILE = {"file", "joint"}


@dataclass
class LocalAggregationConfig(ir.InstanceRecognitionConfig):
    num_clusters: Optional[int] = None  # K; null = la_regime(N) (5854 for Kinetics' 240k videos; paper 6000)
    num_clusterings: int = 3  # m, k-means runs combined (Sec. 4.2, Table 6)
    background_neighbors: Optional[int] = None  # k of the top-k background; null = la_regime(N) (4096 at N >= 4096)
    kmeans_iters: int = 20  # Lloyd iterations (authors' code)
    kmeans_backend: Literal["auto", "faiss", "torch"] = "auto"
    kmeans_seed: int = 0  # clustering i of epoch e uses seed kmeans_seed + e * m + i
    cluster_source: str = "bank"  # one of CLUSTER_SOURCES
    cluster_features: Optional[str] = None  # path of the [N, F] features for file-based sources
    # weight of the file part in the joint space [bank ; w * file], both parts unit rows
    # (1 = the authors' plain concatenation of unit vectors; 0 = the bank alone)
    joint_weight: float = 1.0
    # what k-means sees of the file features (file / joint sources): "none" as stored, "center"
    # (minus their mean, then L2) or "whiten" (PCA-whitened, then L2); see transform_features
    cluster_transform: str = "none"
    # cluster again at every epoch (the iterative LA of Sec. 3.2); false: cluster once, before the
    # first LA step, and keep those clusters (the fixed IDT clusters of Sec. 3.3)
    recluster: bool = True
    ir_warmup_epochs: int = 0  # epochs of IR loss before LA (the papers: 40, or init_from an IR run)
    eps: float = 1e-7  # authors' guard: -log(ratio + eps)

    def __post_init__(self):
        super().__post_init__()
        if self.cluster_source not in CLUSTER_SOURCES:
            raise ConfigError(f"bad value for 'method.cluster_source': {self.cluster_source!r} "
                              f"(allowed: {', '.join(CLUSTER_SOURCES)})")
        if self.cluster_transform not in FEATURE_TRANSFORMS:
            raise ConfigError(f"bad value for 'method.cluster_transform': {self.cluster_transform!r} "
                              f"(allowed: {', '.join(FEATURE_TRANSFORMS)})")
        if self.cluster_source in SOURCES_WITH_FILE and not self.cluster_features:
            raise ConfigError(f"'method.cluster_source: {self.cluster_source}' needs 'method.cluster_features' "
                              "(path of an [N, F] .npy/.pt array aligned with the training manifest)")
        for key in ("num_clusterings", "kmeans_iters"):
            if getattr(self, key) < 1:
                raise ConfigError(f"bad value for 'method.{key}': {getattr(self, key)} (must be >= 1)")
        for key in ("num_clusters", "background_neighbors"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"bad value for 'method.{key}': {getattr(self, key)} (>= 1, or null)")
        if self.ir_warmup_epochs < 0 or self.eps < 0 or self.joint_weight < 0:
            raise ConfigError("'method.ir_warmup_epochs', 'method.eps' and 'method.joint_weight' must be >= 0")


class LocalAggregation(ir.InstanceRecognition):
    """Video LA: the IR model + ``cluster_labels`` [m, N] of ``cluster_source``.

    ``manifest`` (given by :func:`vidssl.methods.build_method`, see ``takes_manifest``):
    the training manifest, against which a features file is checked at construction.
    """

    takes_manifest = True  # build_method passes the training manifest

    def __init__(self, cfg: LocalAggregationConfig, backbone: nn.Module, *, num_samples: int, num_classes: int = 0,
                 manifest=None):
        super().__init__(cfg, backbone, num_samples=num_samples, num_classes=num_classes)
        if cfg.cluster_source in SOURCES_WITH_FILE and manifest is not None:
            # before the run directory exists: a misaligned file stops the run at once
            check_alignment(cfg.cluster_features, num_samples, manifest.paths)
        regime = la_regime(num_samples, cfg.num_clusterings) if num_samples >= 2 else None
        k = cfg.num_clusters if cfg.num_clusters is not None else (regime.num_clusters if regime else 1)
        if k > num_samples:
            raise ConfigError(f"bad value for 'method.num_clusters': {k} (more than the {num_samples} videos)")
        self.num_clusters = k
        self.background_neighbors = (cfg.background_neighbors if cfg.background_neighbors is not None
                                     else (regime.background_neighbors if regime else 1))
        self.register_buffer("cluster_labels", torch.zeros(cfg.num_clusterings, num_samples, dtype=torch.long))
        self.register_buffer("clustered_epoch", torch.tensor(-1, dtype=torch.long))  # -1: never clustered
        self._file_features: np.ndarray | None = None
        # size balance of each current clustering (cluster_balance): logged, and reported when degenerate
        self.balance: list[dict] = []

    # ------------------------------------------------------------------ clustering

    def file_features(self) -> np.ndarray:
        """The [N, F] array of ``cluster_features`` (loaded once, checked against N)."""
        if self._file_features is None:
            check_alignment(self.cfg.cluster_features, self.num_samples)
            self._file_features = load_feature_file(self.cfg.cluster_features)
        return self._file_features

    def clustering_features(self) -> np.ndarray:
        """[N, F] features of ``cluster_source``."""
        return CLUSTER_SOURCES[self.cfg.cluster_source](self)

    @torch.no_grad()
    def cluster(self, epoch: int) -> None:
        """m k-means clusterings of the source features into ``cluster_labels``.

        Under DDP rank 0 clusters and broadcasts, so all processes share the labels.
        """
        from vidssl.distributed import rank, world_size

        cfg = self.cfg
        if world_size() <= 1 or rank() == 0:
            labels = cluster_features(
                self.clustering_features(), self.num_clusters, cfg.num_clusterings,
                seed=cfg.kmeans_seed + epoch * cfg.num_clusterings, niter=cfg.kmeans_iters,
                backend=cfg.kmeans_backend,
            )
            self.cluster_labels.copy_(torch.as_tensor(np.stack(labels)))
        if world_size() > 1:
            torch.distributed.broadcast(self.cluster_labels, src=0)
        self.clustered_epoch.fill_(epoch)
        self.report_balance(epoch)

    def report_balance(self, epoch: int) -> None:
        """Measure the balance of the current clusterings and queue one line (and a warning
        for a degenerate one) for the run's log."""
        self.balance = [cluster_balance(row, self.num_clusters) for row in self.cluster_labels.cpu().numpy()]
        shares = ", ".join(f"{100 * b['largest_share']:.0f}%" for b in self.balance)
        entropy = ", ".join(f"{b['balance']:.2f}" for b in self.balance)
        self.report(f"LA clusters ({self.cfg.cluster_source}, epoch {epoch}): K = {self.num_clusters} x "
                    f"{self.cfg.num_clusterings}, background k = {self.background_neighbors}; largest cluster "
                    f"{shares} of the videos; size entropy {entropy} of 1")
        for i, b in enumerate(self.balance):
            warning = balance_warning(b, f"clustering {i + 1} of {self.cfg.cluster_source}")
            if warning:
                self.report(warning)

    def la_active(self, epoch: int) -> bool:
        return epoch >= self.cfg.ir_warmup_epochs

    def on_train_start(self, progress) -> None:
        """A run that has not taken a step owns no clusters yet: labels loaded with
        ``train.init_from`` (e.g. the fixed IDT clusters of the previous stage) are dropped."""
        if progress.step == 0:
            self.clustered_epoch.fill_(-1)

    def on_epoch_start(self, progress) -> None:
        """Cluster before the first LA epoch, then once per epoch when ``recluster``; a
        resume inside an epoch keeps that epoch's clusters (they are in the checkpoint)."""
        if not self.la_active(progress.epoch):
            return
        done = int(self.clustered_epoch)
        if done < 0 or (self.cfg.recluster and done != progress.epoch):
            self.cluster(progress.epoch)

    # ------------------------------------------------------------------ loss

    def forward(self, batch: dict) -> dict:
        epoch = self.progress.epoch
        if not self.la_active(epoch):
            out = super().forward(batch)
            out["logs"]["phase_ir"] = 1.0
            return out
        if int(self.clustered_epoch) < 0:  # the engine did not call on_epoch_start (e.g. a bare loop)
            self.cluster(epoch)
        clips, index = ir.flatten_views(batch)
        index = index.to(self.memory_bank.bank.device)
        v = self.embed_clips(clips)  # [B*V, D]
        loss, stats = local_aggregation_loss(
            v, self.memory_bank.bank, index, self.cluster_labels, background=self.background_neighbors,
            temperature=self.cfg.temperature, eps=self.cfg.eps,
        )
        self.stash(index, v)
        with torch.no_grad():
            pos = (v * self.memory_bank.get(index)).sum(1).mean()
        largest = max(b["largest_share"] for b in self.balance) if self.balance else float("nan")
        # close: mean |C n B|; close_share: its share of the background (the paper: ~3 %)
        return {"loss": loss, "logs": {"pos_sim": pos, "close": stats["close"],
                                       "close_share": stats["close"] / stats["background"], "phase_ir": 0.0,
                                       "largest_cluster": largest}}
