"""The door's durable state: trusted keys, revocations, used credentials, audit chain.

One SQLite file in WAL mode with ``synchronous=FULL``: when :meth:`DoorStateStore.consume`
returns, the use of a credential (and the audit event that says so) is on disk, so a power cut
after that point cannot make the code reusable.  The relay is only switched after it returns.

Example::

    st = DoorStateStore("/var/lib/storeedge/door.db", dev="door-1")
    st.trust_key(1, public_key)
    result = st.consume(cred, now=clock.time(), audit=pending)   # ConsumeResult
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from storeedge import audit
from storeedge.credential import Credential
from storeedge.firmware.dock_door.events import normalise
from storeedge.firmware.dock_door.exc import StateStoreError, UnknownKeyError
from storeedge.exc import RevocationListError
from storeedge.exc import KeyFileError
from storeedge.doorkeys import KeyAnnouncement, RevocationList, \
    read_signed_keyset, read_signed_revocations, verify_keyset, verify_revocations

USED_RETENTION_S = 7 * 86400     # keep used ids this long past not_after (clock-jump margin)
MAX_SERIAL_STEP = 1000           # a revocation list / key announcement serial may grow by at most
                                 # this much at once (a stolen key cannot jump it to 2**62)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trusted_keys (kid INTEGER PRIMARY KEY, pub BLOB NOT NULL,
    added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_creds (cred_id BLOB PRIMARY KEY);
CREATE TABLE IF NOT EXISTS revoked_keys (kid INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS used (cred_id BLOB PRIMARY KEY, uses INTEGER NOT NULL,
    first_used REAL NOT NULL, last_used REAL NOT NULL, not_after INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (i INTEGER PRIMARY KEY, type TEXT NOT NULL, t REAL NOT NULL,
    body TEXT NOT NULL, h TEXT NOT NULL, emitted INTEGER NOT NULL DEFAULT 0);
"""


@dataclass(frozen=True)
class AuditRecord:
    """One chained audit event as stored: type name and full body (with its ``chain``)."""

    i: int
    type: str
    t: float
    body: dict


@dataclass(frozen=True)
class ConsumeResult:
    """Outcome of :meth:`DoorStateStore.consume`: ``ok``, the use number (1-based) and, when
    ``ok``, the audit record committed in the same transaction."""

    ok: bool
    use: int
    record: AuditRecord | None


class DoorStateStore:
    """Durable door state in one SQLite file (``synchronous=FULL``, WAL).

    Args:
        path: database file (created with its tables when missing).
        dev: device id (names the audit chain).
    """

    def __init__(self, path: str | Path, *, dev: str):
        self.path, self.dev = str(path), dev
        self._lock = threading.Lock()
        self._hwm: float | None = None       # cached clock high-water mark (epoch s)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot open door state {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, fn: Callable[[sqlite3.Connection], object]):
        """Run ``fn(db)`` in one IMMEDIATE transaction; commit (durably) or roll back."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                raise StateStoreError(f"door state {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StateStoreError(f"door state {self.path}: {exc}") from exc

    # -- keys -----------------------------------------------------------------------------
    def trust_key(self, kid: int, public: Ed25519PublicKey, now: float = 0.0) -> None:
        """Add (or replace) trusted store key ``kid``."""
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._tx(lambda db: db.execute(
            "INSERT OR REPLACE INTO trusted_keys VALUES (?, ?, ?)", (kid, raw, now)))

    def apply_keyset(self, data: bytes, *, store: str, now: float = 0.0) -> KeyAnnouncement:
        """Verify a key announcement signed by a trusted, unrevoked key and add its keys.

        Raises :class:`KeyFileError` when badly signed, for another store or not newer.
        """
        kid = read_signed_keyset(data)[0]
        try:
            public = self.public_key(kid)
        except UnknownKeyError:
            raise KeyFileError(f"key announcement signed by unknown key {kid}") from None
        if self.key_revoked(kid):
            raise KeyFileError(f"key announcement signed by revoked key {kid}")
        ann = verify_keyset(data, public)
        if ann.store != store:
            raise KeyFileError(f"key announcement is for store {ann.store!r}, not {store!r}")

        def add(db):
            row = db.execute("SELECT v FROM meta WHERE k = 'keyset_serial'").fetchone()
            _check_serial("key announcement", ann.serial, int(row[0]) if row else 0,
                          KeyFileError)
            for k, pub in ann.keys.items():
                raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                _check_new_key(db, k, raw)
                db.execute("INSERT OR IGNORE INTO trusted_keys VALUES (?, ?, ?)", (k, raw, now))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('keyset_serial', ?)",
                       (str(ann.serial),))
        self._tx(add)
        return ann

    def public_key(self, kid: int) -> Ed25519PublicKey:
        """The trusted key ``kid``; raises :class:`UnknownKeyError`."""
        rows = self._query("SELECT pub FROM trusted_keys WHERE kid = ?", (kid,))
        if not rows:
            raise UnknownKeyError(kid)
        return Ed25519PublicKey.from_public_bytes(rows[0][0])

    def trusted_kids(self) -> list[int]:
        return [r[0] for r in self._query("SELECT kid FROM trusted_keys ORDER BY kid")]

    # -- revocations ------------------------------------------------------------------------
    def apply_revocations(self, data: bytes, *, store: str) -> RevocationList:
        """Verify a signed revocation list and replace the current one atomically.

        Raises :class:`RevocationListError` when unsigned/badly signed, signed by an unknown or
        revoked key, for another store, or not newer than the list already applied.
        """
        kid = read_signed_revocations(data)[0]
        try:
            public = self.public_key(kid)
        except UnknownKeyError:
            raise RevocationListError(f"revocation list signed by unknown key {kid}") from None
        rl = verify_revocations(data, public)
        if rl.store != store:
            raise RevocationListError(f"revocation list is for store {rl.store!r}, not {store!r}")
        if kid in rl.keys or self.key_revoked(kid):
            raise RevocationListError(f"revocation list signed by revoked key {kid}")

        def replace(db):
            _check_serial("revocation list", rl.serial, self._serial(db), RevocationListError)
            db.execute("DELETE FROM revoked_creds")
            db.execute("DELETE FROM revoked_keys")
            db.executemany("INSERT INTO revoked_creds VALUES (?)", [(c,) for c in rl.creds])
            db.executemany("INSERT INTO revoked_keys VALUES (?)", [(k,) for k in rl.keys])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('rev_serial', ?)", (str(rl.serial),))
        self._tx(replace)
        return rl

    @staticmethod
    def _serial(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT v FROM meta WHERE k = 'rev_serial'").fetchone()
        return int(row[0]) if row else 0

    def revocation_serial(self) -> int:
        """Serial of the applied revocation list (0 = none yet)."""
        rows = self._query("SELECT v FROM meta WHERE k = 'rev_serial'")
        return int(rows[0][0]) if rows else 0

    def cred_revoked(self, cred_id: bytes) -> bool:
        return bool(self._query("SELECT 1 FROM revoked_creds WHERE cred_id = ?", (cred_id,)))

    def key_revoked(self, kid: int) -> bool:
        return bool(self._query("SELECT 1 FROM revoked_keys WHERE kid = ?", (kid,)))

    # -- single use ---------------------------------------------------------------------------
    def uses(self, cred_id: bytes) -> int:
        """How many times ``cred_id`` has been used (0 = never)."""
        rows = self._query("SELECT uses FROM used WHERE cred_id = ?", (cred_id,))
        return rows[0][0] if rows else 0

    def consume(self, cred: Credential, now: float, event: tuple[str, dict]) -> ConsumeResult:
        """Record one use of ``cred`` and its audit ``event`` (type, body) in one durable commit.

        Returns ``ok=False`` (nothing written) when all of ``cred.uses`` are spent.  The
        caller may switch the relay only after this returns ``ok=True``.
        """
        hwm = self.clock_hwm()

        def use(db):
            row = db.execute("SELECT uses FROM used WHERE cred_id = ?", (cred.cred_id,)).fetchone()
            n = row[0] if row else 0
            if n >= cred.uses:
                return ConsumeResult(False, n, None)
            db.execute("INSERT INTO used VALUES (?, 1, ?, ?, ?) ON CONFLICT(cred_id) DO UPDATE "
                       "SET uses = uses + 1, last_used = excluded.last_used",
                       (cred.cred_id, now, now, cred.not_after))
            body = dict(event[1], use=n + 1)
            if now > hwm:                       # same commit: the grant's time is a mark too
                db.execute("INSERT OR REPLACE INTO meta VALUES ('clock_hwm', ?)",
                           (repr(float(now)),))
            return ConsumeResult(True, n + 1, self._append(db, event[0], now, body))
        res = self._tx(use)
        if res.ok:
            self._hwm = max(self._hwm or 0.0, float(now))
        return res

    def prune_used(self, now: float, skew_s: float = 0.0) -> int:
        """Forget used ids whose credential expired more than a week ago; returns the count.

        Judged by ``min(now, clock high-water mark)``: a clock booted days ahead cannot prune
        records early, and nothing is pruned while the clock is behind the mark by more than
        ``skew_s`` seconds (nor before a mark exists).
        """
        hwm = self.clock_hwm()
        if hwm <= 0 or now < hwm - skew_s:
            return 0
        cutoff = min(now, hwm) - USED_RETENTION_S
        return self._tx(lambda db: db.execute(
            "DELETE FROM used WHERE not_after < ?", (cutoff,)).rowcount)

    # -- wall-clock high-water mark -----------------------------------------------------------
    def clock_hwm(self) -> float:
        """The highest wall-clock time (epoch s) this door has recorded (0.0 = none yet)."""
        if self._hwm is None:
            rows = self._query("SELECT v FROM meta WHERE k = 'clock_hwm'")
            self._hwm = float(rows[0][0]) if rows else 0.0
        return self._hwm

    def reset_clock_hwm(self, now: float) -> float:
        """Set the mark to ``now`` even when that lowers it (a technician, on the door, with
        the app stopped, after fixing a clock that ran ahead); returns the previous mark."""
        old = self.clock_hwm()
        self._tx(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES ('clock_hwm', ?)",
                                       (repr(float(now)),)))
        self._hwm = float(now)
        return old

    def advance_clock_hwm(self, now: float) -> float:
        """Raise the durable high-water mark to ``now`` (never lowers it); returns the mark."""
        if now <= self.clock_hwm():
            return self._hwm
        self._tx(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES ('clock_hwm', ?)",
                                       (repr(float(now)),)))
        self._hwm = float(now)
        return self._hwm

    # -- audit chain ---------------------------------------------------------------------------
    def _append(self, db: sqlite3.Connection, etype: str, t: float, body: dict) -> AuditRecord:
        body = normalise(etype, body)
        row = db.execute("SELECT i, h FROM audit ORDER BY i DESC LIMIT 1").fetchone()
        i, prev = (row[0] + 1, row[1]) if row else (0, audit.genesis(self.dev))
        link = audit.make_link(self.dev, i, prev, etype, t, body)
        full = dict(body, chain={"i": link.i, "prev": link.prev, "h": link.h, "t": link.t})
        db.execute("INSERT INTO audit (i, type, t, body, h) VALUES (?, ?, ?, ?, ?)",
                   (i, etype, link.t, json.dumps(full, separators=(",", ":")), link.h))
        return AuditRecord(i, etype, link.t, full)

    def append_audit(self, etype: str, t: float, body: dict) -> AuditRecord:
        """Chain and store one event durably (before it is handed to the outbox)."""
        return self._tx(lambda db: self._append(db, etype, t, body))

    def mark_emitted(self, i: int, keep: int = 1000) -> None:
        """Event ``i`` is in the outbox; prune emitted rows older than the last ``keep``."""
        def mark(db):
            db.execute("UPDATE audit SET emitted = 1 WHERE i = ?", (i,))
            db.execute("DELETE FROM audit WHERE emitted = 1 AND i < ?", (i - keep,))
        self._tx(mark)

    def pending_audit(self) -> list[AuditRecord]:
        """Chained events not yet handed to the outbox (e.g. after a crash), oldest first."""
        rows = self._query("SELECT i, type, t, body FROM audit WHERE emitted = 0 ORDER BY i")
        return [AuditRecord(i, ty, t, json.loads(b)) for i, ty, t, b in rows]

    def recent_audit(self, n: int = 50) -> list[AuditRecord]:
        """The last ``n`` chained events kept locally, oldest first."""
        rows = self._query("SELECT i, type, t, body FROM audit ORDER BY i DESC LIMIT ?", (n,))
        return [AuditRecord(i, ty, t, json.loads(b)) for i, ty, t, b in reversed(rows)]


def _check_serial(what: str, serial: int, current: int, error: type) -> None:
    """A new serial must be above ``current`` by at most :data:`MAX_SERIAL_STEP`."""
    if serial <= current:
        raise error(f"{what} serial {serial} is not newer than the applied serial {current}")
    if serial > current + MAX_SERIAL_STEP:
        raise error(f"{what} serial {serial} jumps more than {MAX_SERIAL_STEP} above the "
                    f"applied serial {current}")


def _check_new_key(db: sqlite3.Connection, kid: int, raw: bytes) -> None:
    """An announced key id must be new or identical: an existing id is never redefined."""
    row = db.execute("SELECT pub FROM trusted_keys WHERE kid = ?", (kid,)).fetchone()
    if row is not None and bytes(row[0]) != raw:
        raise KeyFileError(f"key announcement redefines existing key id {kid}: refused")
    if db.execute("SELECT 1 FROM revoked_keys WHERE kid = ?", (kid,)).fetchone():
        raise KeyFileError(f"key announcement re-adds revoked key id {kid}: refused")
