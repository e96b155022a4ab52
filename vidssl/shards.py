"""Work split into shards (``--shard i/n``): SLURM arrays and several machines.

A leaf module (it imports only the errors), so that every
part that processes a manifest video by video (dense trajectories, stored optical
flow) splits and runs the work the same way: :func:`parse_shard`, :func:`shard_indices`,
:func:`run_jobs` (worker processes and a progress bar) and :func:`record_result`.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence

from vidssl.errors import ShardError


def parse_shard(spec: Optional[str]) -> tuple[int, int]:
    """'i/n' -> (i, n); None -> (0, 1)."""
    if spec is None:
        return 0, 1
    try:
        i, n = (int(p) for p in str(spec).split("/"))
    except ValueError:
        raise ShardError(f"--shard {spec!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ShardError(f"--shard {spec!r}: need 0 <= i < n")
    return i, n


def shard_indices(count: int, shard: tuple[int, int]) -> list[int]:
    """Videos of shard i of n: every n-th one starting at i (balanced across shards)."""
    i, n = shard
    return list(range(i, count, n))


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int = 1,
             initializer: Optional[Callable[[], None]] = None, progress: bool = False, log=sys.stderr,
             postfix: Optional[Callable[[float], str]] = None) -> Iterator[Any]:
    """``fn(job)`` for every job, in this process (``workers <= 1``) or in ``workers`` spawned
    processes (results then come in completion order); yields the results.

    ``initializer`` runs once per process (e.g. one OpenCV thread each); with ``progress`` a
    tqdm bar counts the jobs, its text ``postfix(elapsed seconds)`` after every result.
    ``fn`` and ``initializer`` must be module-level functions (picklable) for workers > 1.
    """
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="video", file=log, dynamic_ncols=True)
    t0 = time.perf_counter()
    pool = None
    if workers <= 1:
        if initializer is not None:
            initializer()
        results = map(fn, jobs)
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers, initializer=initializer)
        results = pool.imap_unordered(fn, jobs)
    try:
        for res in results:
            yield res
            if bar is not None:
                bar.update(1)
                if postfix is not None:
                    bar.set_postfix_str(postfix(max(time.perf_counter() - t0, 1e-9)))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()


def record_result(stats: dict, video: str, err: Optional[str], who: str, log=sys.stderr, **counts: int) -> None:
    """Book one job's outcome in ``stats`` (``done``, ``failed`` and one total per ``counts``
    key): a failure is listed and reported as ``<who>: skipped VIDEO: REASON`` on ``log``."""
    if err is not None:
        stats["failed"].append((video, err))
        print(f"{who}: skipped {video}: {err}", file=log)
        return
    stats["done"] += 1
    for key, n in counts.items():
        stats[key] += n
