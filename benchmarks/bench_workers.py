"""Worker processes for the manifest-level commands: videos/s, side by side in one run.

On the built-in data (``builtin:test`` by default, rendered on first use):

  features, w=K      ``vidssl features MANIFEST --checkpoint random --config ir_tiny --workers K``
                     (:func:`vidssl.eval.export.export_features`): K DataLoader workers decode and
                     crop the test views while the main process runs the encoder
  check-videos, w=K  ``vidssl check-videos MANIFEST --workers K``
                     (:func:`vidssl.data.check.check_videos`): every frame decoded, K processes

Each setting runs ``--rounds`` times, the settings interleaved (these machines are noisy);
the best round counts. Worker start-up is included: it is part of a command's cost. The
ratio is against the first setting of its row group. The features of every worker count
are checked to be the same array, and the check-videos reports the same list.

    python benchmarks/bench_workers.py [--manifest builtin:test] [--feature-workers 0,1,2]
        [--check-workers 1,2] [--rounds 2] [--threads 1] [--json OUT]

``--threads``: torch threads of the main process (1 by default: on 2 cores the workers need
the other core; a thread pool spinning against busy cores costs more than it gives).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

# torch is imported in main() only: check-videos' worker processes are spawned and import
# this script again, which should not cost them a torch import


def time_features(encoder, manifest, workers: int, out: Path) -> tuple[float, np.ndarray]:
    from vidssl.eval.export import export_features

    t0 = time.perf_counter()
    export_features(encoder, manifest, out, workers=workers, progress=False)
    return time.perf_counter() - t0, np.load(out)


def time_check(manifest, workers: int) -> tuple[float, list]:
    from vidssl.data.check import check_videos

    t0 = time.perf_counter()
    bad = check_videos(manifest, progress=False, workers=workers)
    return time.perf_counter() - t0, bad


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="builtin:test")
    ap.add_argument("--recipe", default="ir_tiny", help="recipe of the random encoder (ir_tiny)")
    ap.add_argument("--feature-workers", default="0,1,2")
    ap.add_argument("--check-workers", default="1,2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from vidssl.eval.encoder import load_encoder

    encoder = load_encoder("random", recipe=args.recipe, device="cpu")
    manifest = encoder.open_manifest(args.manifest)
    n = len(manifest)
    fw = [int(w) for w in args.feature_workers.split(",")]
    cw = [int(w) for w in args.check_workers.split(",")]
    best: dict[tuple[str, int], float] = {}
    outputs: dict[tuple[str, int], object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for w in fw:
                secs, feats = time_features(encoder, manifest, w, Path(tmp) / f"f{w}.npy")
                best[("features", w)] = min(secs, best.get(("features", w), float("inf")))
                outputs[("features", w)] = feats
            for w in cw:
                secs, bad = time_check(manifest, w)
                best[("check-videos", w)] = min(secs, best.get(("check-videos", w), float("inf")))
                outputs[("check-videos", w)] = bad
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    same_features = all(np.array_equal(outputs[("features", fw[0])], outputs[("features", w)]) for w in fw)
    same_report = all(outputs[("check-videos", cw[0])] == outputs[("check-videos", w)] for w in cw)
    print(f"\n{n} videos of {args.manifest}; {os.cpu_count()} cores seen (shared with whatever else runs); "
          f"torch threads {args.threads}; best of {args.rounds} rounds")
    print(f"{'command':<14} {'workers':>7} {'seconds':>8} {'videos/s':>9} {'ratio':>6}")
    rows = []
    for what, ws in (("features", fw), ("check-videos", cw)):
        base = best[(what, ws[0])]
        for w in ws:
            secs = best[(what, w)]
            rows.append({"command": what, "workers": w, "seconds": round(secs, 2), "videos_per_s": round(n / secs, 1),
                         "ratio": round(base / secs, 2)})
            print(f"{what:<14} {w:>7} {secs:>8.2f} {n / secs:>9.1f} {base / secs:>6.2f}")
    print(f"features identical across worker counts: {same_features}; check-videos reports identical: {same_report}")
    result = {"manifest": args.manifest, "videos": n, "cores": os.cpu_count(), "threads": args.threads,
              "rounds": args.rounds, "rows": rows, "same_features": same_features, "same_report": same_report}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
