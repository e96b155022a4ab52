"""Data pipeline throughput (decode + augment, clips/s) next to the tiny training step.

Measured side by side in one run, on the built-in synthetic videos (64 x 64 px,
64 frames, H.264; rendered into a temporary folder, or ``--data``):

  decode only     ``read_frames`` of the frames of an item's clips (main process)
  pipeline, w=K   ``build_loader`` with K DataLoader workers: decode + sampling +
                  augmentation (tiny recipe: rho = 2 clips of 8 frames at stride 2,
                  scale jitter [64, 80], 56 x 56 crops, colour, grayscale, blur)
  train step      ``build_backbone("r3d18", width=16)`` forward + backward + SGD
                  step on clips of 8 x 64 x 64 (batch 8), with ``--threads`` threads

The ratio "pipeline / train step" says whether the loader keeps the model fed:
above 1 it does. With workers, the loader's rate is measured after its first batch
(worker start-up excluded) and runs with the main process idle, which is what a
training loop with enough workers sees. These machines are noisy: compare ratios
within one run.

    python benchmarks/bench_data.py [--videos 24] [--batch 8] [--batches 12]
        [--workers 0,1,2] [--threads 2] [--seconds 4] [--data DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidssl.config import AugmentConfig, DataConfig


def tiny_data_config(workers: int = 0) -> DataConfig:
    """The data section of vidssl/configs/tiny_base.yaml."""
    return DataConfig(num_frames=8, stride=2, views=2, crop_size=56, test_short_side=64, test_clips=4,
                      batch_size=32, workers=workers,
                      augment=AugmentConfig(short_side=(64, 80), blur_sigma=(0.1, 1.0)))


def prepare_videos(folder: Path, videos: int) -> Path:
    """The built-in dataset's train manifest (or, without it, plain PyAV videos of the same size)."""
    try:
        from vidssl.data.synthetic import make_synthetic
    except ImportError:
        make_synthetic = None
    if make_synthetic is not None:
        return Path(make_synthetic(folder, videos=videos, seed=0)["train"])
    import av

    from vidssl.data.manifests import write_manifest

    print("(vidssl.data.synthetic is not available: writing moving-noise videos with PyAV)")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(videos):
        path = folder / f"{i:05d}.mp4"
        base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 64
            s.pix_fmt = "yuv420p"
            for t in range(64):
                frame = np.roll(base, t, axis=1)
                for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        paths.append(path)
    return write_manifest(folder / "train.csv", paths, [i % 4 for i in range(videos)])


def decode_rate(dataset, seconds: float) -> float:
    """Clips/s of decoding alone: one ``read_frames`` per item, the union of its clips' frames."""
    from vidssl.data.sampling import train_clip_indices
    from vidssl.data.video import probe, read_frames

    cfg = dataset.cfg
    n, clips, start = 0, 0, time.perf_counter()
    while n < 1 or time.perf_counter() - start < seconds:
        path = dataset.manifest.paths[n % len(dataset)]
        info = probe(path)
        plan = train_clip_indices(np.random.default_rng([0, n]), info.num_frames, info.fps, cfg)
        read_frames(path, np.unique(np.concatenate([ix for clip in plan for ix in clip])))
        n += 1
        clips += len(plan)
    return clips / (time.perf_counter() - start)


class Repeated(torch.utils.data.Dataset):
    """The videos of ``dataset`` over and over, so that one loader (one start of its
    workers) serves every timed batch of a small benchmark dataset."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, seed = key
        return self.dataset[(index % len(self.dataset), seed)]


def loader_rate(dataset, batch: int, workers: int, batches: int) -> float:
    """Clips/s through ``build_loader`` (decode + augment + collate), after the first batch."""
    from vidssl.data.datasets import build_loader

    loader = build_loader(Repeated(dataset, batch * (batches + 1)), batch, shuffle=True, seed=0, workers=workers)
    clips, start = 0, None
    for b in loader:
        if start is None:  # excludes the workers' start-up and the first decode
            start = time.perf_counter()
        else:
            clips += b["clips"][0].shape[0] * b["clips"][0].shape[1]
    return clips / (time.perf_counter() - start)


def train_rate(batch: int, seconds: float) -> float | None:
    """Clips/s of r3d18 width 16, forward + backward + SGD step on 8 x 64 x 64 clips."""
    try:
        from vidssl.models import build_backbone

        model = build_backbone("r3d18", width=16)
    except (ImportError, AttributeError, KeyError, ValueError) as e:
        print(f"(training step skipped: vidssl.models.build_backbone('r3d18', width=16) is unavailable: {e})")
        return None
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 8, 64, 64)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    step()  # warm-up
    best = 0.0
    for _ in range(3):  # best of 3 rounds: the figure least disturbed by other processes
        n, start = 0, time.perf_counter()
        while n < 1 or time.perf_counter() - start < seconds / 3:
            step()
            n += 1
        best = max(best, batch * n / (time.perf_counter() - start))
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=24, help="synthetic videos to render")
    ap.add_argument("--batch", type=int, default=8, help="videos per batch (x rho = 2 clips each)")
    ap.add_argument("--batches", type=int, default=16, help="batches timed per loader setting")
    ap.add_argument("--workers", default="0,1,2", help="comma-separated DataLoader worker counts")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (main process)")
    ap.add_argument("--seconds", type=float, default=4.0, help="time for the decode and train figures")
    ap.add_argument("--data", help="use this folder for the synthetic videos (kept)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from vidssl.data.builtin import open_manifest
    from vidssl.data.datasets import VideoDataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data) if args.data else Path(tmp) / "synth"
        t0 = time.perf_counter()
        manifest_path = prepare_videos(folder, args.videos)
        print(f"videos: {manifest_path} (ready in {time.perf_counter() - t0:.1f} s)")
        manifest = open_manifest(manifest_path)
        dataset = VideoDataset(manifest, tiny_data_config(), train=True)
        print(f"{len(dataset)} training videos; torch {torch.__version__}, {args.threads} threads\n")

        rows = [("decode only (main process)", decode_rate(dataset, args.seconds))]
        for w in [int(x) for x in args.workers.split(",") if x != ""]:
            rows.append((f"pipeline, workers={w}", loader_rate(dataset, args.batch, w, args.batches)))
        train = train_rate(args.batch, args.seconds)

    base = rows[1][1] if len(rows) > 1 else rows[0][1]
    head = f"{'setting':<30} {'clips/s':>9} {'vs workers=' + args.workers.split(',')[0]:>13} {'vs train':>9}"
    print(head)
    print("-" * len(head))
    for name, rate in rows:
        vs_train = f"{rate / train:.2f}" if train else "-"
        print(f"{name:<30} {rate:>9.1f} {rate / base:>13.2f} {vs_train:>9}")
    if train:
        print(f"{'train step r3d18 w16 8x64x64':<30} {train:>9.1f} {'':>13} {1.0:>9.2f}")


if __name__ == "__main__":
    main()
