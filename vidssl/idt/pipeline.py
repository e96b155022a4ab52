"""The manifest-level steps after extraction: fit PCA + GMM, encode every video.

Shared by ``vidssl idt fit`` / ``vidssl idt encode`` and the LA + IDT workflow
(:mod:`vidssl.workflow.la_idt`). Dense-trajectory paper Sec. 3.3 and 4.2: PCA and
the GMM are fitted on a random sample (500 descriptors from each of up to 3500
videos); every video's descriptors are then encoded into one power + L2 normalised,
count-sketched Fisher vector (2000-d), one row per manifest video, in manifest order.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from vidssl.errors import FisherModelError
from vidssl.fileio import atomic_write
from vidssl.idt.extract import descriptor_file, load_descriptors
from vidssl.idt.fisher import FisherConfig, FisherModel, sample_rows
from vidssl.idt.options import IDTOptions


def descriptor_files(videos: Sequence[str], folder: str | os.PathLike) -> list[Path]:
    """The descriptor file of every video (existing or not), in manifest order."""
    return [descriptor_file(folder, v) for v in videos]


def read_options(file: str | os.PathLike) -> IDTOptions:
    """The IDT options a descriptor file was extracted with (its row layout depends on
    them: ``track_length`` and the cell counts change the descriptor sizes)."""
    with np.load(file, allow_pickle=False) as z:
        return IDTOptions.from_dict(json.loads(str(z["options"])))


def fit_fisher(files: Sequence[str | os.PathLike], cfg: FisherConfig) -> tuple[FisherModel, int]:
    """PCA + GMM (+ count sketch) fitted on a sample of the existing ``files``.

    Returns (model, number of sampled descriptors). Raises FisherModelError when no
    file exists.
    """
    existing = [Path(f) for f in files if Path(f).exists()]
    if not existing:
        raise FisherModelError("no descriptor file of this manifest exists (run `vidssl idt extract` first)")
    samples = sample_rows(existing, cfg, load_descriptors)
    return FisherModel.fit(samples, cfg, read_options(existing[0])), len(samples)


def encode_files(files: Sequence[str | os.PathLike], model: FisherModel, chunk: int = 4096,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [N, out_dim], missing bool [N]): one Fisher vector per file, zero
    rows for the files that do not exist. Descriptors stream in chunks of ``chunk`` rows."""
    feats = np.zeros((len(files), model.out_dim), np.float32)
    missing = np.zeros(len(files), bool)
    it = range(len(files))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, unit="video", file=sys.stderr)
    for i in it:
        if not Path(files[i]).exists():
            missing[i] = True
            continue
        rows = load_descriptors(files[i])
        feats[i] = model.encode(rows[s:s + chunk] for s in range(0, len(rows), chunk))
    return feats, missing


def save_encoded(out: str | os.PathLike, features: np.ndarray, paths: Sequence[str], labels: Sequence[int],
                 missing: np.ndarray) -> Path:
    """Atomic ``.npz`` with ``features`` [N, D], ``paths`` [N] (the manifest order),
    ``labels`` [N] and ``missing`` [N] (read back by :mod:`vidssl.methods.feature_file`)."""
    return atomic_write(out, lambda f: np.savez(f, features=features, paths=np.asarray(paths),
                                                labels=np.asarray(labels, np.int64), missing=missing))

