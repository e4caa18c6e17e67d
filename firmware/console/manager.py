"""Config workflow: candidate, commit, `commit confirmed` with automatic rollback, rollback N.

Semantics follow Junos, which technicians from the network world know:

* ``commit`` writes the candidate as a new version (atomic, versioned) and makes it live; with
  nothing changed it confirms a pending ``commit confirmed``.
* ``commit confirmed M`` does the same but restores the previous version after ``M`` minutes
  unless ``confirm`` (or a plain ``commit``) comes first.  The pending rollback is stored on
  disk, so it still happens if the console restarts (deadline kept in wall-clock seconds).
* ``rollback N`` loads the version N commits back into the candidate (0 = the live one,
  i.e. throw away edits); ``diff`` shows it and ``commit`` applies it.

Every commit, including an automatic rollback, is a ``console.commit`` event with the diff,
secrets masked.  Times: monotonic seconds of the injected clock for the timer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from storeedge.drivers.clock import Clock
from storeedge.firmware.console.candidate import Candidate, Change
from storeedge.firmware.console.events import ConfigChange, ConfigCommitted, ConfigConfirmed
from storeedge.firmware.console.exc import CommandError
from storeedge.firmware.console.schema import Schema
from storeedge.firmware.console.store import ConfigStore, PendingConfirm, VersionInfo

MAX_CONFIRM_MINUTES = 60
ROLLBACK_RETRY_S = 30.0     # a failed automatic rollback is tried again after this long


@dataclass(frozen=True)
class CommitResult:
    """What a commit did.

    Attributes:
        version: the new live version.
        previous: the version it replaced.
        changes: the diff (secrets masked).
        confirm_by_s: seconds until automatic rollback (None: permanent).
    """

    version: int
    previous: int
    changes: list[Change]
    confirm_by_s: float | None = None


class ConfigManager:
    """Owns the candidate and the store for one device.

    Args:
        store: the versioned store of the live config file.
        schema: the device's config schema.
        clock: time source (monotonic for the confirm timer, wall time for the stored deadline).
        emit: callable taking an event body (``DeviceService.emit``).
        on_commit: called with the new live mapping after every commit (app reload hook).
    """

    def __init__(self, store: ConfigStore, schema: Schema, clock: Clock,
                 emit: Callable[[object], object], on_commit: Callable[[dict], None] | None = None):
        self.store, self.schema, self.clock = store, schema, clock
        self._emit = emit
        self._on_commit = on_commit or (lambda mapping: None)
        self.candidate = Candidate(schema, store.active())
        self._deadline: float | None = None     # monotonic seconds
        self._resume_pending()

    # -- commit
    def commit(self, *, note: str = "", confirm_minutes: float | None = None,
               by: str = "console") -> CommitResult:
        """Commit the candidate as ``by`` (the technician); CommandError if nothing to do."""
        pending = self.store.pending()
        if not self.candidate.dirty:
            if pending is not None and confirm_minutes is None:
                return self.confirm()
            raise CommandError("nothing to commit: the candidate equals the live config")
        self.schema.validate(self.candidate.data)
        if confirm_minutes is not None and not 1 <= confirm_minutes <= MAX_CONFIRM_MINUTES:
            raise CommandError(f"commit confirmed: minutes must be 1..{MAX_CONFIRM_MINUTES}")
        previous = self.store.active_number()
        rollback_to = pending.rollback_to if pending else previous
        if confirm_minutes is not None:
            seconds = confirm_minutes * 60.0
            self.store.set_pending(PendingConfirm(previous + 1, rollback_to,
                                                  self.clock.time() + seconds))
            note = note or f"commit confirmed {confirm_minutes:g} min"
        result = self._write(self.candidate.data, by, note, confirm_minutes)
        if confirm_minutes is None:
            self._clear_pending()
        else:
            self._deadline = self.clock.monotonic() + confirm_minutes * 60.0
        return result

    def _write(self, mapping: dict, by: str, note: str, minutes: float | None) -> CommitResult:
        previous = self.store.active_number()
        changes = self.candidate.changes(self.store.active(), mapping)
        info: VersionInfo = self.store.commit(mapping, by=by, note=note)
        self.candidate.reset(self.store.active())
        confirm_s = minutes * 60.0 if minutes is not None else None
        self._emit(ConfigCommitted(info.number, previous, by, note, confirm_s,
                                   [ConfigChange(c.key, c.old, c.new) for c in changes]))
        self._on_commit(self.store.active())
        return CommitResult(info.number, previous, changes, confirm_s)

    def confirm(self) -> CommitResult:
        """Make a pending `commit confirmed` permanent."""
        pending = self.store.pending()
        if pending is None:
            raise CommandError("nothing to confirm: no commit confirmed is pending")
        self._clear_pending()
        self._emit(ConfigConfirmed(pending.version))
        return CommitResult(pending.version, pending.rollback_to, [], None)

    def _clear_pending(self) -> None:
        self.store.set_pending(None)
        self._deadline = None

    # -- timer
    def seconds_to_rollback(self) -> float | None:
        """Seconds before the pending automatic rollback (None when nothing is pending)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self.clock.monotonic())

    def tick(self) -> CommitResult | None:
        """Call often: performs the automatic rollback once its deadline has passed."""
        if self._deadline is None or self.clock.monotonic() < self._deadline:
            return None
        return self._auto_rollback()

    def _auto_rollback(self) -> CommitResult:
        pending = self.store.pending()
        target = pending.rollback_to if pending else self.store.active_number()
        note = (f"version {pending.version} was not confirmed in time" if pending
                else "confirm deadline passed")
        self._deadline = self.clock.monotonic() + ROLLBACK_RETRY_S   # if the write fails
        result = self._write(self.store.mapping(target), "console:auto-rollback", note, None)
        self._clear_pending()
        return result

    def _resume_pending(self) -> None:
        pending = self.store.pending()
        if pending is None:
            return
        if pending.version != self.store.active_number():
            self.store.set_pending(None)        # the confirmed commit never became live
            return
        left = pending.deadline - self.clock.time()
        self._deadline = self.clock.monotonic() + max(0.0, left)

    # -- rollback / history
    def load_rollback(self, back: int) -> list[Change]:
        """Load the version ``back`` commits before the live one into the candidate."""
        numbers = self.store.numbers()
        if not 0 <= back < len(numbers):
            raise CommandError(f"rollback: N must be 0..{len(numbers) - 1} (see 'history')")
        self.candidate.replace(self.store.mapping(numbers[-1 - back]))
        return self.candidate.changes()

    def history(self) -> list[VersionInfo]:
        """All versions, newest first."""
        return self.store.history()
