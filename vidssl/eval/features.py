"""Frozen encoders and their features, shared by every evaluation protocol.

``load_backbone`` rebuilds the backbone of any checkpoint (or frozen random weights);
``EvalContext.features(split)`` extracts multi-view features once and caches them
per checkpoint + manifest + sampler + read-out, so that several protocols, and
repeated runs, do not decode the videos again. The read-out (``eval.readout``,
``eval.readout_pool``, ``eval.readout_grid``) is in :mod:`vidssl.eval.pooling`;
``EvalContext.layer_contexts`` reads several stages out of one pass over the videos.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from vidssl.config import Config, apply_overrides, build_config, load_config, to_dict
from vidssl.data.batch import batch_views, flatten_views, to_device
from vidssl.distributed import pick_device
from vidssl.errors import ConfigError
from vidssl.eval.pooling import pool_stage, readout_grid
from vidssl.fileio import atomic_write

log = logging.getLogger("vidssl.eval")


def load_backbone(checkpoint: str, overrides: list[str] = (), recipe: str | None = None) -> tuple[nn.Module, Config]:
    """The frozen backbone of ``checkpoint`` and its (overridden) config.

    ``checkpoint="random"`` builds ``model.*`` of ``recipe`` + overrides (or the
    defaults) with random weights drawn from ``train.seed`` — the random-init reference.
    """
    from vidssl.config import in_channels
    from vidssl.models import build_backbone

    if checkpoint == "random":
        cfg = load_config(recipe, list(overrides))
        state = None
    else:
        from vidssl.engine.checkpoint import load_checkpoint

        ckpt = load_checkpoint(checkpoint)
        cfg = build_config(apply_overrides(ckpt["config"], list(overrides)))
        state = {k[len("backbone."):]: v for k, v in ckpt["model"].items() if k.startswith("backbone.")}
        if not state:
            raise ConfigError(f"checkpoint {checkpoint} holds no backbone weights (no 'backbone.*' keys)")
    torch.manual_seed(cfg.train.seed)
    backbone = build_backbone(
        cfg.model.backbone, in_channels=in_channels(cfg.data.modality), width=cfg.model.width, **cfg.model.options
    )
    if state is not None:
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(
                f"checkpoint {checkpoint} does not fit backbone {cfg.model.backbone!r} "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
    backbone.eval().requires_grad_(False)
    return backbone, cfg


@torch.no_grad()
def encode_layers(backbone: nn.Module, clips: tuple, layers: list[str], pool: str = "global",
                  grid: int | None = None) -> dict[str, torch.Tensor]:
    """clips: pathways [N, C, T, H, W] -> {layer: features [N, D_layer]}, from one forward pass.

    A layer is ``pool`` (the backbone's pooled output) or a stage name, whose map
    ``[N, C_s, T_s, H_s, W_s]`` is read out by ``pool`` (``global``: the mean over T, H, W;
    ``time_grid``: the mean over T, then a ``grid`` x ``grid`` spatial grid, VIE Sec. 4;
    :func:`vidssl.eval.pooling.pool_stage`).
    """
    stages = [name for name in layers if name != "pool"]
    if "pool" in layers and pool != "global":
        raise ConfigError(f"eval.readout_pool={pool} reads out a stage: set eval.readout to one of "
                          f"{', '.join(getattr(backbone, 'stage_names', ['conv1', '...', 'conv5']))}")
    if not stages:
        return {"pool": backbone(*clips).float()}
    pooled, maps = backbone(*clips, return_stages=True)
    bad = [name for name in stages if name not in maps]
    if bad:
        raise ConfigError(f"bad value for 'eval.readout': {bad[0]!r} (allowed: pool, {', '.join(maps)})")
    out = {name: pool_stage(maps[name], name, pool, grid) for name in stages}
    if "pool" in layers:
        out["pool"] = pooled.float()
    return {name: out[name] for name in layers}


def encode_clips(backbone: nn.Module, clips: tuple, readout: str = "pool", pool: str = "global",
                 grid: int | None = None) -> torch.Tensor:
    """clips: pathways [N, C, T, H, W] -> features [N, D] of one layer (see :func:`encode_layers`).

    ``readout`` is ``pool`` (the backbone's pooled output) or a stage name (VIE reads out
    from conv3-conv5), read out by ``pool`` / ``grid``.
    """
    return encode_layers(backbone, clips, [readout], pool, grid)[readout]


@torch.no_grad()
def extract_layers(backbone: nn.Module, dataset, layers: list[str], *, pool: str = "global",
                   grid: int | None = None, batch_size: int = 16, workers: int = 0,
                   device: torch.device | None = None, desc: str = "features", progress: bool = True,
                   failed: set[int] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Features of every view of every video at each of ``layers``, from one pass over the videos.

    Returns ``({layer: features [N, V, D_layer]}, labels [N])`` (V = test clips x crops,
    clip-major) in manifest order. A video that cannot be decoded gets the features of the
    next one that can (the dataset's rule); with ``failed`` (a set), the manifest indices of
    those videos are added to it.
    """
    from vidssl.data.datasets import build_loader

    device = device or next(backbone.parameters()).device
    views = max(1, dataset.num_views if hasattr(dataset, "num_views") else 1)
    videos_per_batch = max(1, batch_size // views)
    loader = build_loader(dataset, videos_per_batch, shuffle=False, seed=0, workers=workers)
    feats, labels, order = {name: [] for name in layers}, [], []
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False)
    for batch in bar:
        b, v = batch_views(batch["clips"])
        out = encode_layers(backbone, to_device(flatten_views(batch["clips"]), device), list(layers), pool, grid)
        for name, f in out.items():
            feats[name].append(f.view(b, v, -1).cpu())
        labels.append(batch["label"])
        order.append(batch["index"])
        if failed is not None and batch["bad_paths"]:
            bad = set(batch["bad_paths"])
            failed.update(int(i) for i in batch["index"] if dataset.manifest.paths[int(i)] in bad)
    labels, order = torch.cat(labels), torch.cat(order)
    inv = torch.argsort(order)
    return {name: torch.cat(f)[inv] for name, f in feats.items()}, labels[inv]


def extract_features(backbone: nn.Module, dataset, *, batch_size: int = 16, workers: int = 0,
                     device: torch.device | None = None, readout: str = "pool", pool: str = "global",
                     grid: int | None = None, desc: str = "features", progress: bool = True,
                     failed: set[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of every view of every video at one layer (``readout``, ``pool``, ``grid``).

    Returns ``features [N, V, D]`` (V = test clips x crops, clip-major) and
    ``labels [N]`` in manifest order; see :func:`extract_layers`.
    """
    feats, labels = extract_layers(backbone, dataset, [readout], pool=pool, grid=grid, batch_size=batch_size,
                                   workers=workers, device=device, desc=desc, progress=progress, failed=failed)
    return feats[readout], labels


def video_embeddings(features: torch.Tensor) -> torch.Tensor:
    """[N, V, D] -> [N, D]: the normalised mean of the normalised views (VIE Eq. 1)."""
    return F.normalize(F.normalize(features, dim=-1).mean(1), dim=-1)


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("VIDSSL_CACHE") or Path.home() / ".cache" / "vidssl") / "features"


@dataclass
class EvalContext:
    """Everything an evaluation protocol needs; features are computed lazily."""

    checkpoint: str
    backbone: nn.Module
    cfg: Config
    train: "object"  # Manifest
    test: "object"  # Manifest
    device: torch.device
    progress: bool = True
    _features: dict = field(default_factory=dict)

    def dataset(self, split: str, train_aug: bool = False):
        from vidssl.data.datasets import VideoDataset

        return VideoDataset(self.train if split == "train" else self.test, self.cfg.data, train=train_aug)

    @property
    def multi_label(self) -> bool:
        """Whether the manifests carry label sets (multi-label classification, mAP)."""
        return self.train.multi_label

    def num_classes(self) -> int:
        """Classes of the label space: the named classes, or the largest integer label + 1."""
        if self.multi_label:  # make_context numbered both splits alike
            return self.train.num_classes
        top = max(max(self.train.labels, default=-1), max(self.test.labels, default=-1)) + 1
        return max(len(self.train.classes), top)

    def targets(self, split: str) -> torch.Tensor:
        """Multi-hot targets float [N, K] of ``split`` ('train' or 'test') of a multi-label context."""
        from vidssl.data.multilabel import multi_hot

        manifest = self.train if split == "train" else self.test
        if manifest.label_sets is None:
            raise ConfigError(f"{manifest.source} has one label per video, not label sets")
        return torch.from_numpy(multi_hot(manifest.label_sets, self.num_classes()))

    def cache_key(self, split: str) -> str:
        m = self.train if split == "train" else self.test
        if self.checkpoint == "random":
            source = {"random": to_dict(self.cfg.model), "seed": self.cfg.train.seed}
        else:
            st = Path(self.checkpoint).stat()
            source = {"ckpt": str(Path(self.checkpoint).resolve()), "mtime": st.st_mtime_ns, "size": st.st_size}
        d = self.cfg.data
        sampler = {k: getattr(d, k) for k in ("backend", "modality", "num_frames", "stride", "fps", "sampler",
                                               "segments", "fast_alpha", "short_video", "crop_size",
                                               "test_short_side", "test_crops", "test_clips")}
        sampler["mean"], sampler["std"] = d.augment.mean, d.augment.std
        if d.segment_seconds is not None:  # VIE-TRN's bins sample other frames (absent: the key it always had)
            sampler["segment_seconds"] = d.segment_seconds
        stamps = _file_stamps(m.paths)
        if d.flow_root:  # re-extracted flow (another method, bound or size) gives new features
            from vidssl.data.flow_store import flow_folder

            sampler["flow"] = [d.flow_root, d.flow_bound]
            stamps += _file_stamps([str(flow_folder(d.flow_root, p) / "flow.json") for p in m.paths])
        e = self.cfg.eval
        readout = e.readout
        if e.readout_pool != "global":  # the global read-out keeps the key it always had
            grid = readout_grid(e.readout, e.readout_grid) if e.readout != "pool" else e.readout_grid
            readout = {"readout": e.readout, "pool": e.readout_pool, "grid": grid}
        return _digest([source, stamps, sampler, readout, "v2"])

    def with_readout(self, readout: str, pool: str | None = None, grid: int | None = None) -> "EvalContext":
        """This context reading out ``readout`` by ``pool`` / ``grid`` (default: this context's
        ``eval.readout_pool`` / ``eval.readout_grid``): the same encoder and manifests, a config
        copy, features of its own."""
        e = self.cfg.eval
        ev = replace(e, readout=readout, readout_pool=pool or e.readout_pool,
                     readout_grid=grid if grid is not None else e.readout_grid)
        return EvalContext(self.checkpoint, self.backbone, replace(self.cfg, eval=ev), self.train, self.test,
                           self.device, self.progress)

    def layer_contexts(self, layers: list[str], pool: str | None = None,
                       grid: int | None = None) -> dict[str, "EvalContext"]:
        """{layer: :meth:`with_readout` (layer, pool, grid)}, with the features of both splits ready:
        loaded from the cache, the others read out of one pass over the videos of a split."""
        kids = {name: self.with_readout(name, pool, grid) for name in layers}
        for split in ("train", "test"):
            todo = {}
            for name, kid in kids.items():
                feats = kid._cached(split)
                if feats is None:
                    todo[name] = kid
                else:
                    kid._keep(split, feats)
            if not todo:
                continue
            e = next(iter(todo.values())).cfg.eval
            feats, _ = extract_layers(
                self.backbone, self.dataset(split), list(todo), pool=e.readout_pool, grid=e.readout_grid,
                batch_size=e.batch_size, workers=self.cfg.data.workers, device=self.device,
                desc=f"{split} features ({', '.join(todo)})", progress=self.progress,
            )
            for name, kid in todo.items():
                kid._save(split, feats[name])
                kid._keep(split, feats[name])
        return kids

    def features(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [N, V, D], labels [N]) of ``split`` ('train' or 'test'), cached; with
        ``eval.view_pooling=mean``, ``[N, 1, D]``: the mean over the views."""
        if split in self._features:
            return self._features[split]
        feats = self._cached(split)
        if feats is None:
            e = self.cfg.eval
            feats, _ = extract_features(
                self.backbone, self.dataset(split), batch_size=e.batch_size, workers=self.cfg.data.workers,
                device=self.device, readout=e.readout, pool=e.readout_pool, grid=e.readout_grid,
                desc=f"{split} features", progress=self.progress,
            )
            self._save(split, feats)
        return self._keep(split, feats)

    def _cache_path(self, split: str) -> Path:
        return cache_dir() / f"{self.cache_key(split)}.pt"

    def _cached(self, split: str) -> torch.Tensor | None:
        """The cached features [N, V, D] of ``split``, or None (not cached, or ``eval.cache=false``)."""
        path = self._cache_path(split)
        if not (self.cfg.eval.cache and path.is_file()):
            return None
        log.info("features of %s loaded from cache %s", split, path)
        return torch.load(path, map_location="cpu", weights_only=True)["features"]

    def _save(self, split: str, feats: torch.Tensor) -> None:
        if self.cfg.eval.cache:
            atomic_write(self._cache_path(split), lambda f: torch.save({"features": feats}, f))

    def _keep(self, split: str, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        manifest = self.train if split == "train" else self.test
        labels = torch.as_tensor(manifest.labels, dtype=torch.long)
        if self.cfg.eval.view_pooling != "none":  # one feature per video (CPC Sec. 3.2; VIE Sec. 3)
            feats = pool_views(feats, self.cfg.eval.view_pooling)[:, None]
        self._features[split] = (feats, labels)
        return feats, labels


def pool_views(feats: torch.Tensor, mode: str) -> torch.Tensor:
    """``[N, V, D]`` -> ``[N, D]``: ``mean`` of the views (CPC Sec. 3.2: the mean of z_t over
    the segments), or ``normed_mean``: the L2-normalised mean of the L2-normalised views
    (VIE Sec. 3: a video's embedding from its sampled clips)."""
    if mode == "normed_mean":
        return torch.nn.functional.normalize(torch.nn.functional.normalize(feats, dim=-1).mean(1), dim=-1)
    if mode == "mean":
        return feats.mean(1)
    raise ValueError(f"unknown view pooling {mode!r} (allowed: mean, normed_mean)")


def make_context(checkpoint: str, train_spec: str, test_spec: str, overrides: list[str] = (),
                 label_column: str | None = None, progress: bool = True, recipe: str | None = None) -> EvalContext:
    """Load the encoder and both manifests (labels from ``label_column`` if given)."""
    from vidssl.data.builtin import open_manifest
    from vidssl.eval.multiview import apply_view_preset

    backbone, cfg = load_backbone(checkpoint, overrides, recipe)
    apply_view_preset(cfg)  # eval.views ("10x3", "5x1") -> data.test_clips / data.test_crops
    device = pick_device(cfg.train.device)
    backbone.to(device)
    column = label_column or cfg.data.label_column
    kw = dict(format=cfg.data.format, root=cfg.data.root, split=cfg.data.split, label_column=column)
    train = open_manifest(train_spec, subset="train", **kw)
    test = open_manifest(test_spec, subset="test", **kw)
    if train.multi_label or test.multi_label:
        train, test = _multi_label_pair(train, test)
        return EvalContext(checkpoint, backbone, cfg, train, test, device, progress)
    for name, m in (("train", train), ("test", test)):
        if min(m.labels, default=-1) < 0:
            raise ConfigError(f"the {name} manifest {m.source} needs a label for every video (column {column!r})")
    if train.classes and test.classes and train.classes != test.classes:
        raise ConfigError(
            f"train and test manifests name different classes ({len(train.classes)} vs {len(test.classes)})"
        )
    return EvalContext(checkpoint, backbone, cfg, train, test, device, progress)


def _multi_label_pair(train, test) -> tuple:
    """Both multi-label manifests with one numbering of the classes: the training classes (the
    test ones must be among them), or ``0 .. K-1`` for integer labels. Videos without a label
    are allowed (Charades has some); a test set without any positive has no mAP."""
    for name, m in (("train", train), ("test", test)):
        if not m.multi_label:
            raise ConfigError(f"the {name} manifest {m.source} has one label per video, the other one label sets "
                              f"(column {m.label_column!r}); use label sets in both")
    if bool(train.classes) != bool(test.classes):
        raise ConfigError("one manifest names its classes, the other gives integers: use one kind in both")
    if train.classes:
        return train, test.with_classes(train.classes)
    names = [str(i) for i in range(max(train.num_classes, test.num_classes))]
    return train.with_classes(names), test.with_classes(names)


def _file_stamps(paths: list[str]) -> list:
    """(path, size, mtime) of every video: a file rewritten at the same path (a re-rendered
    dataset, a re-encoded video) gets new features instead of the cached ones."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append([p, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([p, None, None])
    return out


def output_dir(ctx: EvalContext) -> Path:
    """Where an evaluation writes pictures and runs: ``eval.out_dir``, else the run's ``eval/``."""
    if ctx.cfg.eval.out_dir:
        return Path(ctx.cfg.eval.out_dir)
    if ctx.checkpoint != "random":
        return Path(ctx.checkpoint).resolve().parent.parent / "eval"
    return Path("vidssl_eval")
