"""Atomic file writes, in one leaf module (standard library only; it imports nothing of vidssl).

:func:`atomic_write` writes into a temporary file ``.<name>.<pid>.tmp`` in the target's
folder, flushes and fsyncs it, then renames it over the target with :func:`os.replace`
(atomic on POSIX and Windows when both lie on one file system). A crash or an error
leaves either the old file or the new one at the target, never a torn file; on an error
the temporary file is removed. A process killed mid-write may leave its temporary file
behind: a caller that cares removes stale ``.<name>.*.tmp`` files (as the trainer does
for its checkpoint).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary file :func:`atomic_write` uses for ``path``: ``.<name>.<pid>.tmp`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], *, fsync: bool = True) -> Path:
    """Write ``path`` atomically through ``write(f)``, ``f`` a binary file open for writing.

    The parent folder is created. ``write`` must not close ``f``. After it returns, the
    data is flushed (and fsynced unless ``fsync=False``) and the temporary file is renamed
    over ``path``: a crash leaves the old file or the new one, never a torn file. If
    anything raises, the temporary file is removed, ``path`` is untouched and the error
    propagates. Returns ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """:func:`atomic_write` of ``text`` encoded with ``encoding`` (no newline translation)."""
    return atomic_write_bytes(path, text.encode(encoding))
