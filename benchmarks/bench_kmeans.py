"""Is Video LA's clustering practical at Kinetics scale?

Times, on this machine, the per-epoch work of Video LA for Kinetics-400
(dense-trajectory paper Sec. 4.2): m = 3 k-means clusterings with K = 6000 of a
240,000 x 128 memory bank (20 Lloyd iterations, as in the authors' code), and the
top-4096 background-neighbour search of one batch of 256 embeddings against that
bank. Beside it, the same k-means done with scikit-learn's KMeans (Lloyd, random
init, one run, the same iterations) on a subsample, and with our clustering on the
same subsample, so the ratio is measured side by side.

    python benchmarks/bench_kmeans.py                 # full size, 2 of the 20 iterations timed (~5 min, 2 cores)
    python benchmarks/bench_kmeans.py --full          # all m x 20 iterations for real (~30+ min on 2 cores)
    python benchmarks/bench_kmeans.py --n 24000 --k 600 --full   # small and complete
    python benchmarks/bench_kmeans.py --json out.json

A Lloyd iteration costs the same every time (N x K distances, then the means), so by
default each side runs ``--measure-iters`` iterations of one clustering and the
cost of m clusterings x ``--niter`` iterations is that time per iteration times
m x niter (printed as an estimate; the measured time includes the initialisation and
the final assignment, so the estimate errs high). ``--full`` measures it all.

The bank is synthetic: unit vectors drawn around 400 random centres (like a bank
after some training); k-means cost does not depend on the values for a fixed
number of iterations.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def synthetic_bank(n: int, d: int, seed: int = 0, centres: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def time_ours(x: np.ndarray, k: int, m: int, niter: int, backend: str) -> float:
    from vidssl.methods.clustering import cluster_features

    t = time.perf_counter()
    labels = cluster_features(x, k, m, seed=0, niter=niter, backend=backend)
    elapsed = time.perf_counter() - t
    assert len(labels) == m and all(len(lab) == len(x) for lab in labels)
    return elapsed


def time_sklearn(x: np.ndarray, k: int, m: int, niter: int) -> tuple[float, int]:
    """Seconds and total Lloyd iterations of m sklearn KMeans runs (Lloyd, random init, no early stop)."""
    from sklearn.cluster import KMeans

    t = time.perf_counter()
    iters = 0
    for i in range(m):
        km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=niter, tol=0.0, algorithm="lloyd",
                    random_state=i).fit(x)
        iters += int(km.n_iter_)
    return time.perf_counter() - t, iters


def time_background(x: np.ndarray, batch: int, topk: int, repeats: int = 3) -> float:
    """Seconds per batch of LA's background search: top-k of v . bank for a batch of v."""
    from vidssl.losses.local_aggregation import background_neighbours

    bank = torch.from_numpy(x)
    v = torch.nn.functional.normalize(torch.randn(batch, x.shape[1]), dim=1)
    background_neighbours(v, bank, topk)  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        _, idx = background_neighbours(v, bank, topk)
    assert idx.shape == (batch, min(topk, len(x)))
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=240_000, help="bank rows (Kinetics-400: about 240,000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=6000, help="clusters (Sec. 4.2: 6000)")
    ap.add_argument("--m", type=int, default=3, help="clusterings (Sec. 4.2: 3)")
    ap.add_argument("--niter", type=int, default=20, help="Lloyd iterations per clustering (authors' code: 20)")
    ap.add_argument("--measure-iters", type=int, default=2, help="iterations actually timed per side")
    ap.add_argument("--full", action="store_true", help="time all m x niter iterations (slow on CPU)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--topk", type=int, default=4096)
    ap.add_argument("--subsample", type=int, default=None,
                    help="rows for the side-by-side sklearn comparison (default: n / 10, at least 2K)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats of the subsample comparison")
    ap.add_argument("--backend", default="auto", choices=["auto", "faiss", "torch"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    from vidssl.methods.clustering import faiss_available, faiss_gpu_available

    torch.set_num_threads(args.threads)
    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(args.threads)
    backend = args.backend if args.backend != "auto" else ("faiss" if faiss_available() else "torch")
    where = "GPU" if backend == "faiss" and faiss_gpu_available() else (
        "CUDA" if backend == "torch" and torch.cuda.is_available() else f"CPU, {args.threads} threads")
    x = synthetic_bank(args.n, args.dim)
    sub = args.subsample or max(2 * args.k, args.n // 10)
    xs = x[np.random.default_rng(1).permutation(args.n)[:sub]]
    work = args.m * args.niter
    if args.full:
        m_run, it_run = args.m, args.niter
    else:
        m_run, it_run = 1, min(args.measure_iters, args.niter)
    run_iters = m_run * it_run
    print(f"bank {args.n} x {args.dim}, K = {args.k}, m = {args.m} clusterings x {args.niter} iterations; "
          f"backend {backend} ({where}); timed: {m_run} x {it_run} iterations per side")

    t_full = time_ours(x, args.k, m_run, it_run, backend)
    ours_full = t_full / run_iters * work
    tag = "measured" if args.full else f"estimated from {t_full:.1f} s for {run_iters} iterations"
    print(f"ours, full bank: {ours_full:8.1f} s for {args.m} clusterings x {args.niter} iterations ({tag})")
    back = time_background(x, args.batch, args.topk)
    print(f"top-{args.topk} background search, batch {args.batch} x bank {args.n}: {1000 * back:.1f} ms per batch")

    # side by side on the subsample, alternating and keeping the best of --repeats (a shared, noisy machine)
    ours_times, sk_times = [], []
    for _ in range(args.repeats):
        ours_times.append(time_ours(xs, args.k, m_run, it_run, backend))
        with threadpool_limits(args.threads):
            sk_times.append(time_sklearn(xs, args.k, m_run, it_run))
    ours_sub = min(ours_times)
    sk_sub, sk_iters = min(sk_times)
    ours_rate = ours_sub / run_iters  # seconds per Lloyd iteration on the subsample
    sk_rate = sk_sub / max(1, sk_iters)
    print(f"subsample {sub} x {args.dim}: ours {ours_sub:.2f} s ({run_iters} iterations), "
          f"sklearn KMeans {sk_sub:.2f} s ({sk_iters} iterations)")
    print(f"per Lloyd iteration on the subsample: ours {ours_rate:.3f} s, sklearn {sk_rate:.3f} s "
          f"-> sklearn / ours = {sk_rate / ours_rate:.2f}x")
    sk_full_est = sk_rate * work * args.n / sub  # Lloyd cost is linear in N
    print(f"sklearn extrapolated to the full bank: {sk_full_est:.0f} s vs ours {ours_full:.0f} s "
          f"-> {sk_full_est / ours_full:.2f}x")
    steps = args.n // args.batch
    print(f"LA per epoch ({steps} steps of {args.batch}): clustering {ours_full:.0f} s + background search "
          f"{steps * back:.0f} s on this machine")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": args.n, "dim": args.dim, "k": args.k, "m": args.m, "niter": args.niter,
                       "timed_iterations": run_iters, "full": args.full, "backend": backend, "where": where,
                       "ours_full_s": ours_full, "ours_full_timed_s": t_full, "background_ms": 1000 * back,
                       "subsample": sub, "ours_sub_s": ours_sub, "sklearn_sub_s": sk_sub,
                       "sklearn_iters": sk_iters, "sklearn_over_ours_per_iter": sk_rate / ours_rate,
                       "sklearn_full_est_s": sk_full_est}, f, indent=2)


if __name__ == "__main__":
    main()
