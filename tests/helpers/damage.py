"""Damage files the way power cuts and bad SD cards do."""
from __future__ import annotations

import os
import random
import sqlite3


def checkpoint(path) -> None:
    """Fold the WAL into the main database file (so damage to the file hits real rows)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def corrupt(path, seed: int = 1, length: int = 8192) -> None:
    """Write random bytes over ``length`` bytes in the middle of the file (not the header)."""
    size = os.path.getsize(path)
    rnd = random.Random(seed)
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(bytes(rnd.randrange(256) for _ in range(length)))
