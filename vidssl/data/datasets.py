"""Datasets, the epoch sampler and the loader: manifest -> batches of augmented clips.

An item is addressed by a key ``(index, sample_seed)``; all its randomness comes
from ``np.random.default_rng([sample_seed, index])``, and the sample seed of a key is
derived from ``(seed, epoch, index)`` (:func:`sample_seed`). So any item of any epoch
can be rebuilt exactly, whatever the number of workers or processes, and a resumed
run continues with the same clips (``skip_batches``).

Batch (see docs/architecture.md)::

    {"clips": tuple of pathways, each float [B, V, C, T, S, S] (one pathway; two for two_rate),
     "index": long [B], "label": long [B] (-1 = none), "bad_paths": list[str],
     "multi_hot": float [B, K] (multi-label manifests only: 1 for each label of the video)}

V is ``cfg.views`` for training (rho clips per video; large-scale study Sec. 3,
VIE Sec. 3.1) and ``test_clips x test_crops`` at test time (clip-major; App. B.2
multi-view testing).
"""
from __future__ import annotations

import logging
import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidssl.config import DataConfig
from vidssl.data.manifests import Manifest
from vidssl.data.video import probe, read_frames
from vidssl.errors import FlowStoreError, ManifestError, NoDecodableVideoError, VideoDecodeError

log = logging.getLogger("vidssl.data")
_WARNED: set[str] = set()  # bad paths already logged by this process


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index`` in ``epoch`` of a run seeded ``seed`` (uint32)."""
    if min(seed, epoch, index) < 0:
        raise ValueError(f"seed, epoch and index must be >= 0 (got {seed}, {epoch}, {index})")
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint32)[0])


def _warn_once(path: str, reason: str) -> None:
    if path not in _WARNED:
        _WARNED.add(path)
        log.warning("skipping a video that cannot be decoded: %s (%s)", path, reason)


class VideoDataset(Dataset):
    """Clips of the videos of a manifest.

    ``dataset[(index, seed)]`` -> ``{"clips": tuple of pathways, each float [V, C, T, S, S]
    (two for two_rate), "index": int, "label": int, "bad_paths": list[str]}``, with
    ``"multi_hot": float [K]`` (the video's label set) for a multi-label manifest.

    Training (``train=True``): ``cfg.views`` clips from
    :func:`vidssl.data.sampling.train_clip_indices`, each with its own augmentation
    draw (one draw for all of them with ``cfg.shared_draw``). Test: ``cfg.test_clips`` uniformly spaced clips x ``cfg.test_crops`` crops,
    clip-major. All clips of one item come from one decode call (the union of their
    frames). A video that fails to decode is replaced by the next one in the manifest
    (wrapping) that decodes; ``index`` stays the requested position, ``label`` is the
    label of the video actually returned, and the failed paths are in ``bad_paths``
    (and logged once per process on the ``vidssl.data`` logger).
    """

    def __init__(self, manifest: Manifest, cfg: DataConfig, train: bool = True):
        from vidssl.data.transforms import ClipTransform

        if len(manifest) == 0:
            raise ValueError(f"{manifest.source}: the manifest lists no videos")
        self.manifest = manifest
        self.cfg = cfg
        self.train = train
        self.transform = ClipTransform(cfg, train)
        self.num_views = cfg.views if train else cfg.test_clips * cfg.test_crops
        self._bad: dict[int, str] = {}  # index -> reason, known in this process
        self.decode_short_side = decode_short_side(cfg, train) if cfg.decode_scale else None
        if cfg.flow_root:
            _check_flow_root(manifest, cfg.flow_root, cfg.backend)

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, (tuple, list)) else (key, 0)
        index, seed = int(index), int(seed)
        n = len(self.manifest)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} videos")
        bad: list[str] = []
        for step in range(n):
            j = (index + step) % n
            path = self.manifest.paths[j]
            if j in self._bad:
                bad.append(path)
                continue
            try:
                clips = self._clips(path, np.random.default_rng([seed, index]), j)
            except (VideoDecodeError, FlowStoreError) as e:
                reason = getattr(e, "reason", None) or str(e)
                self._bad[j] = reason
                _warn_once(path, reason)
                bad.append(path)
                continue
            item = {"clips": clips, "index": index, "label": int(self.manifest.labels[j]), "bad_paths": bad}
            if self.manifest.label_sets is not None:
                item["multi_hot"] = self._multi_hot(j)
            return item
        first = next(iter(self._bad.items()))
        raise NoDecodableVideoError(
            f"none of the {n} videos of {self.manifest.source} can be decoded "
            f"(e.g. {self.manifest.paths[first[0]]}: {first[1]}); "
            f"list them with `vidssl check-videos {self.manifest.source}`"
        )

    def _plan(self, info, rng: np.random.Generator, row: int) -> list[list[np.ndarray]]:
        """Native frame indices of every view and pathway of manifest row ``row``: sampled
        within the row's bin (``bin`` column, :meth:`Manifest.binned`) or the whole video."""
        from vidssl.data.sampling import test_clip_indices, train_clip_indices

        start, length = 0, info.num_frames
        if "bin" in self.manifest.columns:
            start, length = bin_range(info.num_frames, self.manifest.columns["bin"][row])
        if self.train:
            plan = train_clip_indices(rng, length, info.fps, self.cfg)
        else:
            plan = test_clip_indices(length, info.fps, self.cfg, self.cfg.test_clips)
        return [[np.asarray(ix, np.int64) + start for ix in clip] for clip in plan]

    def _clips(self, path: str, rng: np.random.Generator, row: int) -> tuple[torch.Tensor, ...]:
        """Decode once, then transform every view: a tuple of pathways [V, C, T, S, S]."""
        if self.cfg.flow_root:
            return self._stored_flow_clips(path, rng, row)
        backend = self.cfg.backend
        plan = self._plan(probe(path, backend), rng, row)
        wanted = np.unique(np.concatenate([np.asarray(ix, np.int64).reshape(-1) for clip in plan for ix in clip]))
        frames = read_frames(path, wanted, backend, short_side=self.decode_short_side,
                             threads=self.cfg.decode_threads)  # [len(wanted), H, W, 3]
        views: list[list[torch.Tensor]] = []  # V x pathways
        shared = self.transform.draw(rng, *frames.shape[1:3]) if self.train and self.cfg.shared_draw else None
        for clip in plan:
            pathways = [frames[np.searchsorted(wanted, np.asarray(ix, np.int64))] for ix in clip]
            out = self.transform(pathways, rng) if shared is None else self.transform.apply(pathways, shared)
            if self.train:
                views.append(out)
            else:
                views.extend(out)  # test: one entry per crop, clip-major
        return self._stack(views)

    def _stored_flow_clips(self, path: str, rng: np.random.Generator, row: int) -> tuple[torch.Tensor, ...]:
        """As :meth:`_clips`, from stored fields: the T + 1 frames a flow clip is sampled at
        give the T fields that start at its first T frames (field j joins frames j, j + 1)."""
        from vidssl.data.flow_store import flow_folder, probe_flow, read_flow

        folder = flow_folder(self.cfg.flow_root, path)
        info = probe_flow(folder)
        plan = self._plan(info, rng, row)
        last = info.num_frames - 2  # the last field; a padded clip repeats its last frame
        plan = [[np.minimum(np.asarray(ix, np.int64)[:-1], last) for ix in clip] for clip in plan]
        wanted = np.unique(np.concatenate([ix for clip in plan for ix in clip]))
        fields = read_flow(folder, wanted, self.cfg.flow_bound)  # [len(wanted), H, W, 2]
        views: list[list[torch.Tensor]] = []
        shared = self.transform.draw(rng, *fields.shape[1:3]) if self.train and self.cfg.shared_draw else None
        for clip in plan:
            pathways = [fields[np.searchsorted(wanted, ix)] for ix in clip]
            out = self.transform(pathways, rng) if shared is None else self.transform.apply(pathways, shared)
            if self.train:
                views.append(out)
            else:
                views.extend(out)
        return self._stack(views)

    def _multi_hot(self, j: int) -> torch.Tensor:
        """float [K]: the label set of video ``j`` of a multi-label manifest, K = its classes."""
        from vidssl.data.multilabel import multi_hot

        if getattr(self, "_num_label_classes", None) is None:
            self._num_label_classes = self.manifest.num_classes
        return torch.from_numpy(multi_hot([self.manifest.label_sets[j]], self._num_label_classes)[0])

    @staticmethod
    def _stack(views: list[list[torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        return tuple(torch.stack([v[p] for v in views]) for p in range(len(views[0])))


def decode_short_side(cfg: DataConfig, train: bool) -> int | None:
    """The largest short side the augmentation reads from (``data.decode_scale``): frames
    decoded at it lose nothing the crop-and-resize would keep. None where a crop can be
    any small part of the frame (``resized``), so decoding stays at the native size."""
    if not train:
        return max(cfg.test_short_side, cfg.crop_size)
    crop = cfg.augment.crop
    if crop == "scale_jitter":
        return max(cfg.augment.short_side[1], cfg.crop_size)
    return cfg.crop_size if crop == "center" else None


def bin_range(num_frames: int, spec: str) -> tuple[int, int]:
    """(first frame, number of frames) of bin ``"b/n"``: frames floor(b N / n) .. floor((b + 1) N / n) - 1
    (at least one frame)."""
    b, n = (int(x) for x in spec.split("/"))
    start = b * num_frames // n
    return start, max(1, (b + 1) * num_frames // n - start)


def _check_flow_root(manifest: Manifest, root: str, backend: str = "pyav") -> None:
    """Every video needs its flow folder, and the folder must fit the video (its number of
    frames): one error naming the first offenders."""
    from vidssl.data.flow_store import mismatched_folders, missing_folders

    missing = missing_folders(root, manifest.paths)
    if missing:
        shown = ", ".join(missing[:3])
        raise ManifestError(
            f"data.flow_root {root}: {len(missing)} of the {len(manifest)} videos of {manifest.source} have no "
            f"flow folder (e.g. {shown}); run `vidssl flow extract {manifest.source} --out {root}`"
        )
    wrong = mismatched_folders(root, manifest.paths, backend)
    if wrong:
        shown = "; ".join(f"{v}: {n} frames in its flow folder, {m} in the video" for v, n, m in wrong)
        raise ManifestError(f"data.flow_root {root}: stored flow that does not fit its video ({shown}); "
                            "re-extract it into a fresh folder")


class EpochSampler(Sampler):
    """Keys ``(index, sample_seed)`` of one epoch for one process.

    The order is a permutation drawn from ``(seed, epoch)`` (or the manifest order).
    It is cut into global batches of ``batch_size x world``; process ``rank`` takes
    the ``rank``-th equal share of every global batch. With ``drop_last`` the last
    incomplete global batch is dropped; otherwise it is padded by wrapping around to
    the start of the order so that every process gets an equal share.
    ``skip_batches`` skips the first batches (those a resumed run already consumed).
    ``batch_size`` is per process.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int,
                 rank: int = 0, world: int = 1, drop_last: bool, skip_batches: int = 0):
        if n < 1:
            raise ValueError(f"EpochSampler: no items to sample (n={n})")
        if batch_size < 1:
            raise ValueError(f"EpochSampler: batch_size must be >= 1 (got {batch_size})")
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"EpochSampler: bad rank {rank} for world size {world}")
        if skip_batches < 0 or seed < 0 or epoch < 0:
            raise ValueError(f"EpochSampler: skip_batches, seed and epoch must be >= 0 "
                             f"(got {skip_batches}, {seed}, {epoch})")
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world
        self.drop_last, self.skip_batches = drop_last, skip_batches

    def batches(self) -> list[np.ndarray]:
        """This process's batches of manifest indices (all of them, before skipping)."""
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
                 if self.shuffle else np.arange(self.n))
        g = self.batch_size * self.world
        if self.drop_last:
            nb = self.n // g
            order = order[: nb * g]
        else:
            nb = math.ceil(self.n / g)
            last = self.n - (nb - 1) * g
            pad = math.ceil(last / self.world) * self.world - last
            order = np.concatenate([order, np.resize(order, pad)])  # wrap around (np.resize repeats)
        out = []
        for b in range(nb):
            chunk = order[b * g:(b + 1) * g]
            share = len(chunk) // self.world
            out.append(chunk[self.rank * share:(self.rank + 1) * share])
        return out

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for batch in self.batches()[self.skip_batches:]:
            for i in batch.tolist():
                yield (i, sample_seed(self.seed, self.epoch, i))

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches()[self.skip_batches:])

    def num_batches(self) -> int:
        return max(0, len(self.batches()) - self.skip_batches)


def collate(items: Sequence[dict]) -> dict:
    """Items -> batch: clips, a tuple of pathways [B, V, C, T, S, S] (and ``multi_hot`` [B, K]
    when the items have it)."""
    if not items:
        raise ValueError("collate: no items")
    batch = {
        "clips": tuple(torch.stack(pathway) for pathway in zip(*(it["clips"] for it in items))),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "bad_paths": [p for it in items for p in it["bad_paths"]],
    }
    if "multi_hot" in items[0]:
        batch["multi_hot"] = torch.stack([it["multi_hot"] for it in items])
    return batch


def build_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, epoch: int = 0,
                 rank: int = 0, world: int = 1, workers: int = 0, drop_last: bool = False,
                 skip_batches: int = 0, worker_init_fn=None) -> DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochSampler` (``batch_size`` per process);
    ``worker_init_fn(worker_id)`` runs in every worker as it starts (the trainer's signal handling)."""
    sampler = EpochSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, epoch=epoch, rank=rank,
                           world=world, drop_last=drop_last, skip_batches=skip_batches)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
        drop_last=False,  # the sampler already made every batch of this process
        # no cv2.setNumThreads in the workers: resizing an OpenCV thread pool inherited
        # through fork deadlocks (pthread_cond_destroy) once the parent has used it
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=2 if workers else None, persistent_workers=False, worker_init_fn=worker_init_fn,
    )
