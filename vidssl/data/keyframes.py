"""Clips centred on annotated keyframes, with their boxes: the input of action detection.

Large-scale study App. B.3: "We perform inference on a single clip with 8 frames sampled with
stride 8 centered at the frame that is to be evaluated". :class:`KeyframeDataset` gives, for
every keyframe of a :class:`~vidssl.data.boxes.BoxTable`, one clip of ``data.num_frames``
frames at ``data.stride`` (in frames at ``data.fps``; +1 frame for ``diff`` / ``flow``)
centred on the keyframe (:func:`keyframe_clip_indices`; frames before the start or past the
end repeat the first / last one, as SlowFast's AVA loader), the keyframe's boxes and their
multi-hot targets.

The whole frame is resized to ``size x size`` (no crop, so normalised boxes stay valid;
non-square frames are stretched, where SlowFast keeps the aspect at a short side of 256),
through the pipeline's own modality conversion and normalisation
(:class:`~vidssl.data.transforms.ClipTransform`). The only augmentation is the horizontal
flip (boxes mirrored with the frames): drawn per item from ``(seed, index)`` with ``flip=None``,
or fixed (``True`` / ``False``: the frozen-encoder protocol extracts both once).
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidssl.config import DataConfig
from vidssl.data.boxes import BoxTable
from vidssl.errors import ConfigError

_EPS = 1e-6


def keyframe_clip_indices(seconds: float, num_frames: int, fps: float, cfg: DataConfig) -> np.ndarray:
    """Native frame indices int64 ``[T (+1)]`` of the clip centred on the frame at ``seconds``:
    target-rate positions ``c + (j - n // 2) * stride`` (``c`` the keyframe, ``n`` the frames
    the modality needs), mapped to native frames and clamped into the video."""
    target = float(cfg.fps) if cfg.fps is not None else float(fps)
    n = cfg.num_frames + (1 if cfg.modality in ("diff", "flow") else 0)
    positions = seconds * target + (np.arange(n) - n // 2) * float(cfg.stride)
    native = np.floor(positions * (fps / target) + 0.5 + _EPS).astype(np.int64)
    return np.clip(native, 0, num_frames - 1)


def check_detection_data(cfg: DataConfig) -> None:
    """One-line :class:`ConfigError` for data settings a keyframe clip cannot follow."""
    if cfg.sampler not in ("clips",):
        raise ConfigError(f"action detection takes one single-pathway clip per keyframe (data.sampler=clips), "
                          f"not data.sampler={cfg.sampler}")
    if cfg.flow_root:
        raise ConfigError("action detection decodes frames: stored flow (data.flow_root) is not supported; "
                          "data.modality=flow computes it from the frames")


class KeyframeDataset(Dataset):
    """``dataset[(index, seed)]`` -> ``{"clips": float [C, T, S, S], "boxes": float [n, 4]
    (x1, y1, x2, y2 in [0, 1], flipped with the clip), "targets": float [n, K], "rows": long [n]
    (the boxes' indices in the table), "flip": bool, "index": int}`` for keyframe ``index``."""

    def __init__(self, manifest, table: BoxTable, cfg: DataConfig, size: int, flip: Optional[bool] = None):
        from vidssl.data.transforms import ClipTransform

        check_detection_data(cfg)
        self.manifest, self.table, self.flip = manifest, table, flip
        self.cfg = dataclasses.replace(cfg, crop_size=int(size))
        self.transform = ClipTransform(self.cfg, train=False)  # apply() with a fixed draw: no random step
        self.keyframes = table.keyframes()
        self.targets = torch.from_numpy(table.targets())
        self.boxes = torch.from_numpy(table.boxes)

    def __len__(self) -> int:
        return len(self.keyframes)

    def with_flip(self, flip: Optional[bool]) -> "KeyframeDataset":
        """The same keyframes, mirrored (True), not (False) or at random (None)."""
        out = copy.copy(self)
        out.flip = flip
        return out

    def __getitem__(self, key) -> dict:
        from vidssl.data.transforms import ClipDraw
        from vidssl.data.video import probe, read_frames

        index, seed = key if isinstance(key, (tuple, list)) else (key, 0)
        index = int(index)
        video, seconds, rows = self.keyframes[index]
        path = self.manifest.paths[video]
        info = probe(path, self.cfg.backend)
        frames = read_frames(path, keyframe_clip_indices(seconds, info.num_frames, info.fps, self.cfg),
                             self.cfg.backend, threads=self.cfg.decode_threads)
        flip = self.flip
        if flip is None:
            flip = bool(np.random.default_rng([int(seed), index]).random() < 0.5)
        h, w = frames.shape[1:3]
        clip = self.transform.apply([frames], ClipDraw(box=(0, 0, h, w), flip=flip))[0]
        boxes = self.boxes[rows].clone()
        if flip:
            boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
        return {"clips": clip, "boxes": boxes, "targets": self.targets[rows], "rows": torch.from_numpy(rows),
                "flip": flip, "index": index}


def collate_keyframes(items: Sequence[dict]) -> dict:
    """Items -> ``{"clips": ([B, C, T, S, S],), "boxes": [R, 4], "box_index": long [R] (the box's
    clip in the batch), "targets": [R, K], "rows": long [R], "flip": bool [B], "index": long [B]}``."""
    return {
        "clips": (torch.stack([it["clips"] for it in items]),),
        "boxes": torch.cat([it["boxes"] for it in items]),
        "box_index": torch.cat([torch.full((len(it["boxes"]),), b, dtype=torch.long) for b, it in enumerate(items)]),
        "targets": torch.cat([it["targets"] for it in items]),
        "rows": torch.cat([it["rows"] for it in items]),
        "flip": torch.tensor([it["flip"] for it in items]),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
