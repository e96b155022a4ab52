"""A frozen encoder with its test-time preprocessing, for notebooks and scripts.

``load_encoder(run_or_checkpoint)`` -> :class:`Encoder`: the backbone of a checkpoint (eval
mode, no gradients) and the checkpoint's data config (sampler, modality, frames, stride,
crop, test clips x crops, read-out). ``encoder.embed(video)`` gives one vector per video,
the mean of the features of its test-time views: the numbers ``vidssl eval`` computes
(:meth:`vidssl.eval.features.EvalContext.features`, averaged over the views)::

    import vidssl
    enc = vidssl.load_encoder("runs/ir_tiny")                # a run, a .pt, or "random" + recipe
    v = enc.embed("clip.mp4")                                 # [D]
    x = enc.embed_batch(paths, workers=4)                     # [N, D]

The raw ``(backbone, cfg)`` pair is :func:`vidssl.eval.features.load_backbone`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn as nn

from vidssl.config import Config
from vidssl.errors import ConfigError, ManifestError

if TYPE_CHECKING:
    from vidssl.data.manifests import Manifest

log = logging.getLogger("vidssl.eval")

_LISTED = 5  # offenders named in an error message


@dataclass
class Encoder:
    """A frozen backbone and the preprocessing its checkpoint was evaluated with.

    ``backbone``: eval mode, ``requires_grad`` off, on ``device``; ``cfg``: the checkpoint's
    config with the overrides and the ``eval.views`` preset applied; ``checkpoint``: the
    ``.pt`` file, or ``"random"``. Embeddings come back on the CPU as float32.
    """

    backbone: nn.Module
    cfg: Config
    device: torch.device
    checkpoint: str

    @property
    def num_views(self) -> int:
        """V: test clips x test crops per video."""
        return self.cfg.data.test_clips * self.cfg.data.test_crops

    @property
    def view_pooling(self) -> str:
        """``eval.view_pooling`` of the config (``none``, ``mean`` or ``normed_mean``); an
        embedding is the mean over the views for ``none`` and ``mean``, VIE's normalised mean
        of the normalised views for ``normed_mean``."""
        return self.cfg.eval.view_pooling

    def dataset(self, manifest):
        """The test-time :class:`vidssl.data.datasets.VideoDataset` of ``manifest``."""
        from vidssl.data.datasets import VideoDataset

        return VideoDataset(manifest, self.cfg.data, train=False)

    def open_manifest(self, spec: str | os.PathLike, label_column: str | None = None, subset: str = "train"):
        """A manifest spec (CSV, split folder, folder, ``builtin:SPLIT``) read with the config's
        ``data.format`` / ``root`` / ``split``; labels from ``label_column`` (default
        ``data.label_column``)."""
        from vidssl.data.builtin import open_manifest

        d = self.cfg.data
        return open_manifest(spec, format=d.format, root=d.root, split=d.split, subset=subset,
                             label_column=label_column or d.label_column)

    def views(self, video, fps: float | None = None) -> torch.Tensor:
        """Features of every test-time view of one video: ``[V, D]`` (clip-major).

        ``video``: a path (video file, or frame folder for ``data.backend=frames``) or a
        uint8 array of frames ``[T, H, W, 3]`` (RGB). An array is taken to be at ``fps``
        frames per second (default: ``data.fps``, or any rate when that is null: clips are
        then counted in the array's own frames).
        """
        from vidssl.eval.features import encode_clips

        if isinstance(video, (str, os.PathLike)):
            clips = self.dataset(_manifest_of([video]))[0]["clips"]
        else:
            clips = self._array_clips(video, fps)
        pathways = tuple(c.to(self.device) for c in clips)
        e = self.cfg.eval
        return encode_clips(self.backbone, pathways, e.readout, e.readout_pool, e.readout_grid).cpu()

    def embed(self, video, fps: float | None = None) -> torch.Tensor:
        """One video -> ``[D]``: its :meth:`views` pooled (the mean; :attr:`view_pooling`)."""
        return self._pool(self.views(video, fps)[None])[0]

    def _pool(self, feats: torch.Tensor) -> torch.Tensor:
        from vidssl.eval.features import pool_views

        return pool_views(feats, "normed_mean" if self.view_pooling == "normed_mean" else "mean")

    def embed_batch(self, videos: Sequence, workers: int = 0, batch_size: int | None = None,
                    progress: bool = False) -> torch.Tensor:
        """Many videos -> ``[N, D]``, row i the :meth:`embed` of ``videos[i]``.

        ``videos``: paths or a :class:`vidssl.data.manifests.Manifest`, decoded by a
        DataLoader with ``workers`` processes, ``batch_size`` clips per forward pass
        (default ``eval.batch_size``); or uint8 frame arrays, embedded one by one. The row of
        a video that cannot be decoded is NaN (and the video is logged).
        """
        is_manifest = hasattr(videos, "paths")
        if not is_manifest and len(videos) and all(isinstance(v, (np.ndarray, torch.Tensor)) for v in videos):
            return torch.stack([self.embed(v) for v in videos])
        manifest = videos if is_manifest else _manifest_of(videos)
        emb, decoded = self.embed_manifest(manifest, workers, batch_size, progress)
        if not decoded.all():
            bad = [manifest.paths[i] for i in np.flatnonzero(~decoded.numpy())]
            log.warning("%d of %d videos cannot be decoded (rows NaN), e.g. %s", len(bad), len(manifest),
                        ", ".join(bad[:_LISTED]))
        return emb

    def embed_manifest(self, manifest, workers: int = 0, batch_size: int | None = None,
                       progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings ``[N, D]``, decoded bool ``[N]``) of every video of ``manifest``, in its
        order; the rows of videos that cannot be decoded are NaN."""
        from vidssl.eval.features import extract_features

        failed: set[int] = set()
        feats, _ = extract_features(
            self.backbone, self.dataset(manifest), batch_size=batch_size or self.cfg.eval.batch_size,
            workers=workers, device=self.device, readout=self.cfg.eval.readout, pool=self.cfg.eval.readout_pool,
            grid=self.cfg.eval.readout_grid, desc="embeddings",
            progress=progress, failed=failed,
        )
        emb = self._pool(feats)  # [N, D]
        decoded = torch.ones(len(emb), dtype=torch.bool)
        if failed:
            decoded[sorted(failed)] = False
            emb[~decoded] = float("nan")
        return emb, decoded

    def _array_clips(self, frames, fps: float | None) -> tuple[torch.Tensor, ...]:
        """The test views of a uint8 frame array ``[T, H, W, 3]``, as the dataset makes them from
        a decoded video: a tuple of pathways ``[V, C, T', S, S]``."""
        from vidssl.data.sampling import test_clip_indices
        from vidssl.data.transforms import ClipTransform

        d = self.cfg.data
        if d.flow_root:
            raise ConfigError("data.flow_root reads stored flow per video file; embed a path, not an array")
        if isinstance(frames, torch.Tensor):
            frames = frames.cpu().numpy()
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"a video array must be uint8 [T, H, W, 3] with T >= 1 "
                             f"(got {frames.dtype} {list(frames.shape)})")
        rate = fps or d.fps or 25.0  # with data.fps null the rate does not change the clips
        plan = test_clip_indices(len(frames), rate, d, d.test_clips)
        transform = ClipTransform(d, train=False)
        rng = np.random.default_rng(0)  # unused at test time
        views = []  # V x pathways, clip-major as the dataset stacks them
        for clip in plan:
            views.extend(transform([frames[np.asarray(ix, np.int64)] for ix in clip], rng))
        return tuple(torch.stack([v[p] for v in views]) for p in range(len(views[0])))


def load_encoder(run_or_checkpoint: str | os.PathLike, overrides: Sequence[str] = (), device: str | None = "cpu",
                 recipe: str | None = None) -> Encoder:
    """The frozen encoder of a run directory or checkpoint (``.pt``), ready to embed videos.

    ``"random"`` with ``recipe`` (e.g. ``"ir_tiny"``) gives frozen random weights of the
    recipe's ``model.*``, as ``vidssl eval --checkpoint random --config RECIPE``.
    ``overrides``: ``key=value`` strings applied to the checkpoint's config (e.g.
    ``data.test_clips=4``, ``eval.views=10x3``). ``device``: ``cpu``, ``cuda``, ``cuda:1``,
    ``auto``; ``None`` uses the config's ``train.device``.
    """
    from vidssl.distributed import pick_device
    from vidssl.eval.features import load_backbone
    from vidssl.eval.multiview import apply_view_preset
    from vidssl.eval.protocols import resolve_checkpoint

    checkpoint = str(run_or_checkpoint)
    if recipe is not None and checkpoint != "random":
        raise ConfigError("a recipe goes with the checkpoint 'random' (a checkpoint carries its own config)")
    checkpoint = resolve_checkpoint(checkpoint)
    backbone, cfg = load_backbone(checkpoint, list(overrides), recipe)
    apply_view_preset(cfg)  # eval.views ("10x3") -> data.test_clips / data.test_crops
    name = cfg.train.device if device is None else str(device)
    dev = pick_device(name) if name in ("auto", "cpu", "cuda") else torch.device(name)
    return Encoder(backbone.to(dev), cfg, dev, checkpoint)


def _manifest_of(paths: Sequence) -> Manifest:
    """An unlabelled manifest of ``paths`` (made absolute); missing files are one error naming them."""
    from vidssl.data.manifests import Manifest

    if isinstance(paths, (str, os.PathLike)):
        raise ValueError("embed_batch takes a list of videos; use embed for one")
    resolved = [str(Path(os.path.expanduser(str(p))).resolve()) for p in paths]
    if not resolved:
        raise ManifestError("no videos to embed")
    missing = [p for p in resolved if not os.path.exists(p)]
    if missing:
        raise ManifestError(f"{len(missing)} of {len(resolved)} videos are missing: {', '.join(missing[:_LISTED])}")
    return Manifest(resolved, [-1] * len(resolved), source="videos")
