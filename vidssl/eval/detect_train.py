"""Training and scoring the action-detection head (``vidssl eval detect``; App. B.3).

Frozen encoder (the default, ``eval.detect_finetune=false``): the conv5 map of every keyframe's
clip, averaged over time (``[M, C, H, W]``: what the head's RoIAlign reads, see
:mod:`vidssl.models.roi_head`), is extracted once, and once more for the mirrored clips when
``data.augment.flip`` is on; the head then trains on those maps, each epoch drawing a flip per
keyframe and (``eval.detect_jitter``) new jittered proposals. Fine-tuning
(``eval.detect_finetune=true``) decodes a clip per keyframe per epoch and trains the encoder
too, with its BatchNorm statistics frozen (the usual practice of detection fine-tuning; batch
statistics of a few keyframes are noisy).

Both: SGD with momentum 0.9, binary cross-entropy of the per-class sigmoid against the
boxes' multi-hot targets (mean over boxes and classes), the learning rate rising linearly over
``eval.detect_warmup_epochs`` and dropping 10x at every ``eval.detect_milestones`` epoch
(:func:`vidssl.engine.optim.lr_at`, per iteration).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from vidssl.config import OptimConfig
from vidssl.data.batch import to_device
from vidssl.data.datasets import EpochSampler
from vidssl.data.keyframes import collate_keyframes
from vidssl.engine.optim import lr_at


def jitter_boxes(boxes: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Boxes ``[R, 4]`` in [0, 1] moved by ``N(0, std)`` of their size and rescaled by
    ``exp(N(0, std))`` in each axis, clipped to the frame (at least 1e-3 wide and high)."""
    if std <= 0 or len(boxes) == 0:
        return boxes
    noise = torch.randn(len(boxes), 4, generator=generator, dtype=torch.float64).to(boxes.dtype)
    size = (boxes[:, 2:] - boxes[:, :2])
    centre = (boxes[:, 2:] + boxes[:, :2]) / 2 + noise[:, :2] * std * size
    size = size * torch.exp(noise[:, 2:] * std)
    out = torch.cat([centre - size / 2, centre + size / 2], dim=1).clamp(0.0, 1.0)
    out[:, 2:] = torch.maximum(out[:, 2:], out[:, :2] + 1e-3).clamp(max=1.0)
    out[:, :2] = torch.minimum(out[:, :2], out[:, 2:] - 1e-3)
    return out


def keyframe_loader(dataset, batch_size: int, workers: int, *, shuffle: bool, seed: int, epoch: int) -> DataLoader:
    sampler = EpochSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate_keyframes, prefetch_factor=2 if workers else None)


def conv5_map(backbone: nn.Module, clips: tuple) -> torch.Tensor:
    """conv5 map ``[B, C, T, H, W]`` of the clips (the backbone's last stage)."""
    return backbone(*clips, return_stages=True)[1]["conv5"]


@torch.no_grad()
def extract_maps(backbone: nn.Module, dataset, batch_size: int, workers: int, device: torch.device,
                 desc: str = "keyframes", progress: bool = False) -> torch.Tensor:
    """Time-averaged conv5 maps ``[M, C, H, W]`` (float32, CPU) of every keyframe of ``dataset``, in order."""
    backbone.eval()
    out = [None] * len(dataset)
    loader = keyframe_loader(dataset, batch_size, workers, shuffle=False, seed=0, epoch=0)
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        maps = conv5_map(backbone, to_device(batch["clips"], device)).float().mean(2).cpu()
        for i, m in zip(batch["index"].tolist(), maps):
            out[i] = m
    return torch.stack(out)


def _optimizer(params, e) -> tuple[torch.optim.Optimizer, OptimConfig]:
    sched = OptimConfig(name="sgd", lr=e.detect_lr, momentum=0.9, weight_decay=e.detect_wd, schedule="step",
                        warmup_epochs=e.detect_warmup_epochs, milestones=list(e.detect_milestones), gamma=0.1)
    return torch.optim.SGD(params, lr=e.detect_lr, momentum=0.9, weight_decay=e.detect_wd), sched


def _set_lr(opt, value: float) -> None:
    for group in opt.param_groups:
        group["lr"] = value


def _bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, targets)


def train_frozen(head: nn.Module, maps: dict[bool, torch.Tensor], dataset, e, seed: int, device: torch.device,
                 progress: bool = False) -> list[float]:
    """Train ``head`` on cached maps (``{flipped: [M, C, H, W]}``) of ``dataset``'s keyframes;
    returns the mean loss of every epoch."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.from_numpy(r) for _, _, r in dataset.keyframes]
    boxes, targets = dataset.boxes, dataset.targets
    flips = sorted(maps)
    m = len(rows)
    steps_per_epoch = math.ceil(m / e.detect_batch_size)
    total = e.detect_epochs * steps_per_epoch
    opt, sched = _optimizer(head.parameters(), e)
    head.to(device).train()
    losses, step = [], 0
    for _ in tqdm(range(e.detect_epochs), desc="detection head", unit="epoch", disable=not progress, leave=False):
        order = torch.randperm(m, generator=g)
        flip = torch.randint(len(flips), (m,), generator=g).bool() if len(flips) > 1 else torch.zeros(m, dtype=torch.bool)
        epoch_loss = []
        for s in range(0, m, e.detect_batch_size):
            idx = order[s:s + e.detect_batch_size].tolist()
            fmap = torch.stack([maps[bool(flip[i])][i] for i in idx])
            b = [boxes[rows[i]] for i in idx]
            b = [torch.stack([1 - x[:, 2], x[:, 1], 1 - x[:, 0], x[:, 3]], 1) if flip[i] else x for x, i in zip(b, idx)]
            index = torch.cat([torch.full((len(rows[i]),), k, dtype=torch.long) for k, i in enumerate(idx)])
            t = torch.cat([targets[rows[i]] for i in idx])
            _set_lr(opt, lr_at(step, total, steps_per_epoch, sched))
            step += 1
            if len(t) < 2:  # BatchNorm needs two boxes
                continue
            proposals = jitter_boxes(torch.cat(b), e.detect_jitter, g)
            loss = _bce(head(fmap.to(device), proposals.to(device), index.to(device)), t.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch_loss.append(loss.item())
        losses.append(float(np.mean(epoch_loss)) if epoch_loss else float("nan"))
    return losses


def _freeze_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def train_finetune(backbone: nn.Module, head: nn.Module, dataset, e, seed: int, device: torch.device,
                   workers: int = 0, progress: bool = False) -> list[float]:
    """Train ``backbone`` and ``head`` end to end on ``dataset``'s clips (a new flip per keyframe and
    epoch when the dataset draws them); returns the mean loss of every epoch."""
    g = torch.Generator().manual_seed(seed)
    backbone.requires_grad_(True)
    steps_per_epoch = math.ceil(len(dataset) / e.detect_batch_size)
    total = e.detect_epochs * steps_per_epoch
    opt, sched = _optimizer(list(backbone.parameters()) + list(head.parameters()), e)
    backbone.to(device)
    head.to(device)
    losses, step = [], 0
    for epoch in tqdm(range(e.detect_epochs), desc="detection fine-tuning", unit="epoch", disable=not progress,
                      leave=False):
        backbone.train()
        _freeze_bn(backbone)
        head.train()
        epoch_loss = []
        for batch in keyframe_loader(dataset, e.detect_batch_size, workers, shuffle=True, seed=seed, epoch=epoch):
            _set_lr(opt, lr_at(step, total, steps_per_epoch, sched))
            step += 1
            if len(batch["targets"]) < 2:
                continue
            proposals = jitter_boxes(batch["boxes"], e.detect_jitter, g)
            fmap = conv5_map(backbone, to_device(batch["clips"], device))
            logits = head(fmap, proposals.to(device), batch["box_index"].to(device))
            loss = _bce(logits, batch["targets"].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch_loss.append(loss.item())
        losses.append(float(np.mean(epoch_loss)) if epoch_loss else float("nan"))
    backbone.eval().requires_grad_(False)
    return losses


@torch.no_grad()
def score_proposals(head: nn.Module, maps: torch.Tensor, proposals: list[torch.Tensor],
                    device: torch.device, batch_size: int = 256) -> list[torch.Tensor]:
    """Sigmoid scores ``[n_i, K]`` of each keyframe's proposals ``[n_i, 4]`` on its map ``maps[i]``."""
    head.to(device).eval()
    out = []
    for s in range(0, len(proposals), batch_size):
        part = proposals[s:s + batch_size]
        index = torch.cat([torch.full((len(p),), k, dtype=torch.long) for k, p in enumerate(part)])
        logits = head(maps[s:s + len(part)].to(device), torch.cat(part).to(device), index.to(device))
        out.extend(torch.sigmoid(logits).cpu().split([len(p) for p in part]))
    return out
