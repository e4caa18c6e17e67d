"""Crash-safe file writes: temp file in the same folder, fsync, rename, fsync the folder.

A power cut at any point leaves either the old file or the new one under ``path``, never a
mix or an empty file (POSIX rename is atomic; the two fsyncs make it durable in that order).
"""
from __future__ import annotations

import os
import tempfile

TMP_PREFIX = ".se-tmp-"


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, unlinks) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably; ``mode`` is the file mode."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete temp files an interrupted :func:`write_atomic` left behind; return how many."""
    count = 0
    for name in os.listdir(directory):
        if name.startswith(TMP_PREFIX):
            os.unlink(os.path.join(directory, name))
            count += 1
    if count:
        fsync_dir(directory)
    return count
