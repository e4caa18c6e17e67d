"""Live config: a running app applies a committed config without a restart.

An app declares which settings it can apply while running (:class:`LiveConfig` ``appliers``:
a dotted-key prefix -> a function taking the new validated config) and how it restarts
itself for the rest (``restart``).  The console calls :meth:`LiveConfig.plan` before a commit
(to say which changes need a restart) and :meth:`LiveConfig.apply` after every commit and
after every automatic rollback, so ``commit confirmed N`` really tests a change live and the
rollback puts the old values back live.

Example (freezer)::

    live = LiveConfig(FreezerConfig, cfg, {"freezer.": app.apply_section},
                      restart=request_restart, fixed=("freezer.units", "freezer.probes"))
    target = FreezerTarget(app, FreezerConfig, live=live)
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from storeedge.config import config_from_dict, config_to_dict

log = logging.getLogger(__name__)


class NeedsRestart(Exception):
    """Raised by an applier: this change cannot be applied while running (message: why)."""


@dataclass(frozen=True)
class ReloadPlan:
    """What a new config changes and how it will take effect.

    Attributes:
        live: changed dotted keys applied while the app runs.
        restart: changed dotted keys that need the app to restart itself.
    """

    live: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human lines for the console (empty when nothing changed)."""
        out = []
        if self.live:
            out.append("applied live: " + ", ".join(self.live))
        if self.restart:
            out.append("needs an app restart (the app restarts itself after the commit): "
                       + ", ".join(self.restart))
        return out


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``; lists and empty mappings stay leaves."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def changed_keys(old: Any, new: Any) -> list[str]:
    """Dotted keys whose effective value differs between two validated configs."""
    a, b = flatten(config_to_dict(old)), flatten(config_to_dict(new))
    return sorted(k for k in set(a) | set(b) if a.get(k, object()) != b.get(k, object()))


class LiveConfig:
    """Applies committed configs to a running app.

    Args:
        config_class: the app's config class (validation).
        current: the config the app runs with now.
        appliers: dotted-key prefix -> ``fn(new_config)``; every changed key under a prefix is
            applied by calling its function once (raise :class:`NeedsRestart` to refuse).
        restart: called (once) when a change needs a restart; the app stops cleanly and
            starts again (see ``storeedge.cmdline``).
        fixed: key prefixes that always need a restart even under an applier's prefix.
    """

    def __init__(self, config_class: type, current: Any,
                 appliers: dict[str, Callable[[Any], None]],
                 restart: Callable[[list[str]], None], fixed: tuple[str, ...] = ()):
        self.config_class, self.current = config_class, current
        self.appliers, self.restart, self.fixed = appliers, restart, fixed
        self._lock = threading.Lock()
        self.applied = 0

    def _split(self, keys: list[str]) -> ReloadPlan:
        live, restart = [], []
        for key in keys:
            owner = any(key.startswith(p) for p in self.appliers)
            pinned = any(key == f or key.startswith(f + ".") for f in self.fixed)
            (live if owner and not pinned else restart).append(key)
        return ReloadPlan(live, restart)

    def plan(self, mapping: dict) -> ReloadPlan:
        """How committing ``mapping`` would take effect (nothing is applied)."""
        return self._split(changed_keys(self.current, config_from_dict(mapping,
                                                                       self.config_class)))

    def apply(self, mapping: dict) -> ReloadPlan:
        """Validate ``mapping``, apply what can be applied live, restart for the rest."""
        new = config_from_dict(mapping, self.config_class)
        with self._lock:
            plan = self._split(changed_keys(self.current, new))
            for prefix, fn in self.appliers.items():
                if not any(k.startswith(prefix) for k in plan.live):
                    continue
                try:
                    fn(new)
                except NeedsRestart as exc:
                    log.warning("config change under %s needs a restart: %s", prefix, exc)
                    moved = [k for k in plan.live if k.startswith(prefix)]
                    plan = ReloadPlan([k for k in plan.live if k not in moved],
                                      plan.restart + moved)
            self.current = new
            self.applied += 1
        if plan.live:
            log.info("config applied live: %s", ", ".join(plan.live))
        if plan.restart:
            log.warning("config change needs a restart: %s; restarting", ", ".join(plan.restart))
            self.restart(plan.restart)
        return plan


def apply_log_level(new: Any) -> None:
    """Live applier for ``log.level``: the root logger's level follows the config."""
    logging.getLogger().setLevel(getattr(logging, new.log.level.upper(), logging.INFO))


class Restarter:
    """The ``restart`` callback of a :class:`LiveConfig` for an app's ``main``.

    Calling it sets ``stop`` (the app's orderly shutdown: outbox flushed, ports closed);
    ``main`` then calls :meth:`reexec_if_requested`, which starts the same command line again
    in the same process id (so systemd, the watchdog and a pid file keep following it).

    Args:
        stop: the app's stop event.
    """

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.keys: list[str] = []

    def __call__(self, keys: list[str]) -> None:
        self.keys = list(keys)
        self.stop.set()

    def reexec_if_requested(self) -> None:
        """If a restart was asked for, replace this process with a fresh run (no return)."""
        if not self.keys:
            return
        log.warning("restarting to apply: %s", ", ".join(self.keys))
        logging.shutdown()
        argv = list(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
        os.execv(sys.executable, [sys.executable] + argv[1:])


class ConfigWatcher:
    """Applies the config file when it changes on disk (a stand-alone console's commit, or
    its automatic rollback): polls the file's mtime and size every ``poll_s`` seconds.

    A file that does not validate is logged (one line) and not applied; the app keeps
    running with what it has.  Applying an unchanged config does nothing, so an app that also
    embeds the console is not disturbed when its own commit shows up here.

    Args:
        path: the live config file.
        live: the app's :class:`LiveConfig`.
        stop: the app's stop event (ends the watcher).
        poll_s: seconds between checks.
    """

    def __init__(self, path: str, live: LiveConfig, stop: threading.Event, poll_s: float = 1.0):
        self.path, self.live, self.stop, self.poll_s = path, live, stop, poll_s
        self._seen = self._stamp()
        self.thread = threading.Thread(target=self._run, name="config-watch", daemon=True)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def start(self) -> "ConfigWatcher":
        """Start watching (returns self)."""
        self.thread.start()
        return self

    def check(self) -> ReloadPlan | None:
        """Apply the file if it changed since the last check; the plan, or None."""
        from storeedge.config import ConfigError, yaml_mapping
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            with open(self.path, encoding="utf-8") as fh:
                mapping = yaml_mapping(fh.read())[0]
            return self.live.apply(mapping)
        except (ConfigError, OSError, ValueError) as exc:
            log.error("config file %s changed but was not applied: %s", self.path, exc)
            return None

    def _run(self) -> None:
        while not self.stop.wait(self.poll_s):
            self.check()
