"""Work split into shards (``--shard i/n``): SLURM arrays and several machines.

A leaf module (it imports only the errors), so that every
part that processes a manifest video by video (dense trajectories, stored optical
flow) splits the work the same way.
"""
from __future__ import annotations

from typing import Optional

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
