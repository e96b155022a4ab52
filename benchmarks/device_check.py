"""One prepared check of vidssl on a GPU machine: the ``cuda`` tests and the speed figures, in one JSON.

In at most 8 minutes (``--budget`` 330 s, then the figure in progress), in the order
below; the loader's videos are rendered first, before the process touches the GPU. A
figure that cannot run is recorded as ``{"skipped": reason}``, one that fails as
``{"error": ...}``, and the JSON is rewritten after every figure, so a run cut short
still returns what it measured.

1. ``env``: torch, CUDA, the GPU, cores, PyAV, faiss, OpenCV.
2. ``pytest_cuda``: ``pytest -m cuda tests/test_cuda.py tests/test_cuda_fp16.py`` (every
   method's step in bf16 with channels-last-3d weights, LA's re-clustering, bank and queue on
   the device, a compiled step, a 2-step CLI run with ``train.device=cuda``; fp16 steps with the
   GradScaler and a ``train.amp=fp16`` CLI run); counts and the log's tail.
3. ``kmeans``: LA's k-means at Kinetics scale (240,000 x 128, K = 6000, m = 3, 20
   iterations): faiss on the GPU if it imports, and the torch k-means on the device.
4. ``step_speed``: clips/s of every method's training step at paper size (Slow R-50
   8x8x224 for supervised and the rho-methods, rho = 2; r3d18 16x112 for IR / LA with a
   240,000-row bank), bf16, contiguous and channels-last-3d; each figure a few seconds.
5. ``loader``: the data loader at paper size with all the machine's cores (H.264 through
   PyAV; without PyAV that is recorded as skipped, and JPEG frame folders through OpenCV
   are timed instead).
6. ``data_wait``: the share of each step spent waiting for data (loader -> device -> step).
7. ``step_speed`` with ``torch.compile`` (and channels-last), for the methods of
   ``--compile-methods``, while the time budget lasts (each compilation takes a minute or so).

A session lent a GPU machine runs it with one call of the device tool's ``run`` (this
script installs nothing; the wrapper ``device_check.sh`` installs vidssl from the copied
tree with ``pip install --no-index --no-deps --no-build-isolation -e .``, or puts the tree
on ``PYTHONPATH`` where that cannot build)::

    run(command="bash benchmarks/device_check.sh $OUT", timeout_s=480)

and, with PyAV / faiss wheels downloaded into ``.whl/`` (README, "GPU"),
``carry=[".whl"]``: the wrapper installs them first. Figures: ``$OUT/device_check.json``;
logs beside it. ``--cpu`` runs the same code on the CPU at tiny sizes (``--quick``:
smaller still, for the test), the GPU-only figures recorded as skipped:

    python benchmarks/device_check.py --cpu --quick --out /tmp/check
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # device_steps, device_loader beside this file

import device_loader  # noqa: E402
import device_steps  # noqa: E402

FORMAT = "vidssl-device-check/1"
SECTIONS = ("env", "pytest_cuda", "kmeans", "step_speed", "loader", "data_wait")
DEFAULT_METHODS = "supervised,moco,simclr,byol,swav,ir,la"
QUICK_METHODS = "simclr,ir"  # one of each size family
BANK_METHODS = ("ir", "la")
LAYOUTS = {"contiguous": False, "channels_last": True}


class Report:
    """The JSON of all figures, rewritten (atomically) after every change."""

    def __init__(self, path: Path, args: dict):
        self.path = path
        self.start = time.perf_counter()
        self.data = {"format": FORMAT, "args": args, "finished": False, **{s: {} for s in SECTIONS}}
        self.save()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def save(self) -> None:
        self.data["seconds"] = round(self.elapsed(), 1)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        tmp.replace(self.path)

    def put(self, section: str, key: str | None, value) -> None:
        if key is None:
            self.data[section] = value
        else:
            self.data[section][key] = value
        self.save()
        print(f"[{self.elapsed():6.1f} s] {section}{'.' + key if key else ''}: {_short(value)}", flush=True)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 200 else text[:197] + "..."


def error(e: BaseException) -> dict:
    lines = str(e).strip().splitlines()
    return {"error": f"{type(e).__name__}: {lines[0][:300] if lines else ''}"}


def attempt(fn, *args, **kwargs) -> dict:
    """``fn(...)``, or ``{"skipped": reason}`` / ``{"error": ...}``."""
    try:
        return fn(*args, **kwargs)
    except device_steps.Skip as e:
        return {"skipped": str(e)}
    except Exception as e:  # one failed figure must not cost the others
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return error(e)


# ----------------------------------------------------------------------------- sections


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "cpu_cores": os.cpu_count(),
           "device": str(device), "cuda_available": torch.cuda.is_available(),
           "pyav": device_loader.pyav_version()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpu_memory_gb=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), bf16=torch.cuda.is_bf16_supported())
    try:
        import faiss

        env["faiss"] = getattr(faiss, "__version__", "?")
        env["faiss_gpus"] = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        env["faiss"] = None
    try:
        import cv2

        env["opencv"] = cv2.__version__
    except ImportError:
        env["opencv"] = None
    import vidssl

    env["vidssl"] = str(Path(vidssl.__file__).resolve().parent)
    return env


def pytest_cuda(out: Path, timeout: float) -> dict:
    """``pytest -m cuda tests/test_cuda.py tests/test_cuda_fp16.py``: counts from its JUnit XML, the log's tail."""
    xml, log = out / "pytest_cuda.xml", out / "pytest_cuda.log"
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "tests/test_cuda_fp16.py", "-q", "-rfEs",
           "-p", "no:cacheprovider",
           f"--junitxml={xml}", "--timeout=300"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        rc, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:  # its output may come as bytes even in text mode
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc, text = "timeout", partial + f"\n(stopped after {timeout:.0f} s)"
    log.write_text(text)
    result = {"rc": rc, "seconds": round(time.perf_counter() - start, 1), "command": " ".join(cmd[2:]),
              "tail": text[-3000:]}
    if xml.is_file():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        result.update(counts)
        result["failed_tests"] = [c.get("name") for c in suite.iter("testcase")
                                  if c.find("failure") is not None or c.find("error") is not None]
    return result


def kmeans_figures(n: int, d: int, k: int, m: int, device: torch.device, backend: str) -> dict:
    """m k-means clusterings of n random unit vectors (a memory bank) into k clusters."""
    import numpy as np

    from vidssl.methods.clustering import cluster_balance, kmeans_faiss, kmeans_torch

    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    times, shares = [], []
    for i in range(m):
        sync = device_steps.sync
        sync(device)
        t0 = time.perf_counter()
        if backend == "faiss":
            labels, _ = kmeans_faiss(x, k, niter=20, seed=i, gpu=device.type == "cuda")
        else:
            labels, _ = kmeans_torch(x, k, niter=20, seed=i, device=device)
        sync(device)
        times.append(time.perf_counter() - t0)
        shares.append(cluster_balance(labels, k)["largest_share"])
    return {"backend": f"{backend}-{device.type}", "n": n, "dim": d, "k": k, "m": m, "niter": 20,
            "seconds_per_clustering": times, "seconds_total": sum(times), "largest_cluster_share": max(shares)}


def render_videos(report: Report, args, folder: Path) -> dict | None:
    """Videos at the source size of the paper recipes (340 x 256; tiny with ``--cpu``),
    H.264 through PyAV, else JPEG frame folders through OpenCV; returns {"backend",
    "manifest"} (None when nothing here decodes videos). Called before the process uses
    the GPU: the writers are forked."""
    if device_loader.pyav_version():
        backend = "pyav"
    else:
        report.put("loader", "pyav", {"skipped": "PyAV is not installed on this machine (carry its wheel: README, "
                                                 "'GPU'); JPEG frame folders decoded by OpenCV are timed instead"})
        try:
            import cv2  # noqa: F401
        except ImportError:
            report.put("loader", "frames", {"skipped": "neither PyAV nor OpenCV is installed: nothing decodes videos"})
            return None
        backend = "frames"
    w, h = (340, 256) if not args.cpu else ((64, 48) if args.quick else (86, 64))
    manifest, took = device_loader.write_videos(folder / backend, videos=args.videos, frames=args.video_frames,
                                                width=w, height=h, backend=backend, workers=args.workers)
    report.put("loader", "videos", {"backend": backend, "count": args.videos, "frames": args.video_frames,
                                    "width": w, "height": h, "fps": 30, "write_s": round(took, 1)})
    return {"backend": backend, "manifest": manifest}


def loader_rates(report: Report, args, data: dict) -> None:
    """The loader's clips/s with the data section of the rho recipes (Slow R-50 8x8x224,
    rho = 2) and of IR / LA (16x112), with all the cores and with half of them."""
    worker_counts = sorted({args.workers, max(1, args.workers // 2)}, reverse=True)
    for name in ("simclr", "ir"):
        cfg = attempt(device_steps.method_config, name, args.size, args.quick)
        if isinstance(cfg, dict):
            report.put("loader", f"{name}_data", cfg)
            continue
        figures = {"clip": device_steps.describe(cfg)}
        dataset = device_loader.dataset_for(data["manifest"], cfg.data, data["backend"])
        videos = max(1, (args.ir_clips if name in BANK_METHODS else args.rho_clips) // cfg.data.views)
        for workers in worker_counts:
            if report.elapsed() > args.budget:
                figures[f"workers_{workers}"] = {"skipped": f"time budget ({args.budget:.0f} s) spent"}
                continue
            figures[f"workers_{workers}"] = attempt(device_loader.loader_rate, dataset, videos, workers, args.seconds)
        report.put("loader", f"{name}_data", figures)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder of device_check.json and the logs (e.g. $OUT)")
    ap.add_argument("--cpu", action="store_true", help="on the CPU at tiny sizes; GPU-only figures skipped")
    ap.add_argument("--quick", action="store_true", help="smallest sizes and shortest timings (the test)")
    ap.add_argument("--budget", type=float, default=330.0,
                    help="seconds from the start; figures begun later are skipped (the last one may run over)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per figure (3; 0.3 with --quick)")
    ap.add_argument("--methods", default=None, help=f"methods of step_speed ({DEFAULT_METHODS}; with --quick "
                                                    f"{QUICK_METHODS}; cpc too)")
    ap.add_argument("--compile-methods", default="simclr,ir", help="methods timed compiled ('' = none)")
    ap.add_argument("--rho-clips", type=int, default=None, help="clips per step, Slow R-50 (32 = 16 videos x rho 2)")
    ap.add_argument("--ir-clips", type=int, default=None, help="clips per step, r3d18 16x112 (64)")
    ap.add_argument("--bank", type=int, default=None, help="memory-bank rows of IR / LA (240000: Kinetics)")
    ap.add_argument("--kmeans", default=None, help="N,D,K,m (240000,128,6000,3)")
    ap.add_argument("--workers", type=int, default=None, help="loader workers (all cores)")
    ap.add_argument("--videos", type=int, default=None, help="videos rendered for the loader (32)")
    ap.add_argument("--video-frames", type=int, default=None, help="frames per rendered video (150)")
    ap.add_argument("--no-pytest", action="store_true", help="skip pytest -m cuda")
    ap.add_argument("--pytest-timeout", type=float, default=170.0)
    args = ap.parse_args(argv)
    tiny = args.cpu
    q = args.quick
    defaults = {"methods": QUICK_METHODS if q else DEFAULT_METHODS, "seconds": 0.3 if q else 3.0, "rho_clips": (4 if q else 8) if tiny else 32,
                "ir_clips": (4 if q else 8) if tiny else 64, "bank": 64 if tiny else 240000,
                "kmeans": ("1000,16,10,2" if q else "20000,128,200,3") if tiny else "240000,128,6000,3",
                "workers": (1 if q else min(2, os.cpu_count() or 1)) if tiny else (os.cpu_count() or 1),
                "videos": (4 if q else 8) if tiny else 32, "video_frames": (24 if q else 64) if tiny else 150}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.size = "tiny" if tiny else "paper"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.cpu and not torch.cuda.is_available():
        print("device_check: no CUDA device here; use --cpu for the CPU check", file=sys.stderr)
        return 2
    device = torch.device("cpu") if args.cpu else torch.device("cuda", 0)
    report = Report(out / "device_check.json", {k: v for k, v in vars(args).items()})
    over = lambda: report.elapsed() > args.budget  # noqa: E731
    budget_note = {"skipped": f"time budget ({args.budget:.0f} s) spent"}

    tmp = tempfile.TemporaryDirectory(prefix="vidssl_device_check_")
    data = attempt(render_videos, report, args, Path(tmp.name))  # first: the writers are forked
    if data is not None and "manifest" not in data:  # a failure, recorded
        report.put("loader", "videos", data)
        data = None

    report.put("env", None, attempt(environment, device))

    if args.cpu or args.no_pytest:
        why = "--cpu: the cuda tests need a GPU" if args.cpu else "--no-pytest"
        report.put("pytest_cuda", None, {"skipped": why})
    else:
        report.put("pytest_cuda", None, attempt(pytest_cuda, out, args.pytest_timeout))

    n, d, k, m = (int(v) for v in args.kmeans.split(","))
    from vidssl.methods.clustering import faiss_available, faiss_gpu_available

    if faiss_available() and (args.cpu or faiss_gpu_available()):
        report.put("kmeans", "faiss", attempt(kmeans_figures, n, d, k, m, device, "faiss"))
    else:
        report.put("kmeans", "faiss", {"skipped": "faiss is not installed" if not faiss_available()
                                       else "this faiss has no GPU support"})
    report.put("kmeans", "torch", attempt(kmeans_figures, n, d, k, m, device, "torch") if not over() else budget_note)

    methods = [s for s in args.methods.split(",") if s]
    for name in methods:
        clips = args.ir_clips if name in BANK_METHODS else args.rho_clips
        figures = {}
        for layout, channels_last in LAYOUTS.items():
            figures[layout] = budget_note if over() else attempt(
                device_steps.step_speed, name, {"channels_last": channels_last, "compile": False}, size=args.size,
                quick=args.quick, clips=clips, bank=args.bank, device=device, seconds=args.seconds)
        report.put("step_speed", name, figures)

    if data is not None:
        if over():
            report.put("loader", "rates", budget_note)
        else:
            try:
                loader_rates(report, args, data)
            except Exception as e:
                report.put("loader", "error", error(e))
    for name in ("simclr", "ir"):
        if data is None:
            report.put("data_wait", name, {"skipped": "no videos to load (see loader)"})
            continue
        if over():
            report.put("data_wait", name, budget_note)
            continue
        clips = args.ir_clips if name in BANK_METHODS else args.rho_clips
        views = 1 if name in BANK_METHODS else 2
        report.put("data_wait", name, attempt(
            device_steps.data_wait, name,
            lambda cfg: device_loader.dataset_for(data["manifest"], cfg, data["backend"]),
            size=args.size, quick=args.quick, bank=args.bank, device=device, workers=args.workers,
            seconds=args.seconds * 2, videos_per_step=max(1, clips // views)))
    tmp.cleanup()

    compiled = [s for s in args.compile_methods.split(",") if s]
    for layout, channels_last in LAYOUTS.items():  # every method compiled once before the second layout
        for name in compiled:
            key = f"compile_{layout}"
            figures = report.data["step_speed"].setdefault(name, {})
            if args.cpu:
                figures[key] = {"skipped": "--cpu: compiled figures are GPU-only (inductor's CPU code generation "
                                           "takes minutes)"}
                report.data["step_speed"][name] = figures
                continue
            if over():
                figures[key] = budget_note
            else:
                clips = args.ir_clips if name in BANK_METHODS else args.rho_clips
                figures[key] = attempt(device_steps.step_speed, name, {"channels_last": channels_last, "compile": True},
                                       size=args.size, quick=args.quick, clips=clips, bank=args.bank, device=device,
                                       seconds=args.seconds)
            report.put("step_speed", name, figures)

    report.data["finished"] = True
    report.save()
    print(f"device_check: {report.path} ({report.elapsed():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
