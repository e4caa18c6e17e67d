"""The one runner of every device app: ``storeedge <kind>`` and the demo both use it.

An app is wired once, in the ``build`` function its spec names (``AppSpec.build``)::

    def build(cfg, sink: EventSink, clock, **parts) -> DeviceApp: ...

``sink`` is where the app's events leave it (the :class:`DeviceService`, which implements
:class:`EventSink`); ``parts`` are optional replacements for hardware the config would open
(the demo passes a scripted camera, a simulated 1-Wire bus...).  The app's ``run(stop)``
blocks until ``stop`` is set and calls ``sink.heartbeat()`` on every healthy pass;
``serve_config(config_path, restart)`` returns its live config (or None).  A build module may
also define ``before_sink(cfg, clock, **parts) -> parts`` for hardware that must be set before
the outbox opens (the door's lock relay).

:func:`run_app` is an app's whole ``main``: arguments (``--config``, ``--validate-config``,
``--log-level``), the config as the spec's config class, logging, signals, the device
service, ``build``, live config, run until stopped, close in order (app, then service), and
``READY=1`` to systemd once the app runs (``WATCHDOG=1`` goes out through the sink's
heartbeat: :func:`notify_ready` and :func:`notify_alive` are the only systemd calls).
:class:`AppRunner` is the same without the process concerns (signals, arguments), for the
demo, which runs several devices in one process; its ``stop`` lets the last events leave
(bounded) before the service closes.

Example (an app's ``main.py``)::

    def main(argv=None) -> int:
        return run_app(apps.app("freezer"), argv)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from storeedge.apps import AppSpec
from storeedge.exc import AppExit, exit_code_of
from storeedge.cmdline import (app_parser, expected_failure, failure_line,
                                           load_app_config, stop_event_on_signals)
from storeedge.firmware.common.watchdog import sd_notify, watchdog_interval_s

log = logging.getLogger("storeedge.runner")


@runtime_checkable
class Liveness(Protocol):
    """How an app tells the supervisor (systemd's watchdog) it is alive."""

    def heartbeat(self) -> None:
        """The app made progress (call once per healthy pass of its loop)."""


@runtime_checkable
class EventSink(Liveness, Protocol):
    """Where a device app's events go: the one way events leave an app.

    :class:`~storeedge.firmware.common.service.DeviceService` implements it; tests pass a
    recording double with the same three methods.
    """

    def emit(self, body: Any, ts: float | None = None) -> Any:
        """Record ``body`` (an event dataclass) durably; ``ts``: its time, epoch s (None: now)."""

    def on_command(self, name: str, handler: Callable) -> None:
        """Run ``handler(command) -> dict | None`` for the signed command ``name``."""


class DeviceApp(Protocol):
    """What ``build`` returns: runs until ``stop`` is set, then releases its hardware."""

    def run(self, stop: threading.Event) -> None:
        """Run (blocking) until ``stop`` is set; close the app's own parts before returning."""

    def serve_config(self, config_path: str, restart: Callable[[list[str]], None]):
        """The app's :class:`LiveConfig` for the file ``config_path`` (what applies while
        running; ``restart(keys)`` for the rest), or None; an app with an embedded console
        starts it here (and stops it when ``run`` returns)."""


def notify_ready() -> None:
    """Tell systemd the app is up (``READY=1``; no-op when not supervised)."""
    sd_notify("READY=1")


def notify_alive() -> None:
    """Tell systemd's watchdog the app is alive (``WATCHDOG=1``; no-op when not supervised)."""
    sd_notify("WATCHDOG=1")


class WatchdogSink:
    """The sink of an app without an outbox (the gateway): liveness only.

    ``emit`` and ``on_command`` refuse with TypeError: such an app's build must not use them.
    """

    def heartbeat(self) -> None:
        """Tell systemd's watchdog we are alive (no-op when not supervised)."""
        notify_alive()

    def emit(self, body: Any, ts: float | None = None) -> Any:
        raise TypeError(f"this app has no outbox: cannot emit {type(body).__name__}")

    def on_command(self, name: str, handler: Callable) -> None:
        raise TypeError(f"this app has no device service: cannot take command {name!r}")

    def start(self) -> None:
        """Nothing to start."""

    def flush(self, timeout_s: float) -> bool:
        """Nothing is held here: True."""
        return True

    def close(self) -> None:
        """Nothing to close."""


def heartbeat_period_s() -> float:
    """How often a loop without its own cadence heartbeats: half of WatchdogSec, else 5 s."""
    return watchdog_interval_s() or 5.0


@dataclass
class AppRunner:
    """One device app in this process: service + ``build`` + a run thread (the demo's way).

    Attributes:
        spec: the app's declaration (``spec.build`` is called).
        cfg: the loaded config (an instance of the spec's config class).
        clock: time source for the app and its event timestamps.
        parts: keyword replacements passed to ``build`` (camera, bus, pin_factory...).
        flush_s: on ``stop``, seconds to wait for the last events to be acknowledged before
            the service closes (the app's final events, e.g. a telemetry flush, get out).
    """

    spec: AppSpec
    cfg: Any
    clock: Any
    parts: dict | None = None
    flush_s: float = 3.0
    sink: Any = None
    app: Any = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.stop_event = threading.Event()

    def build(self) -> Any:
        """Make the parts that come first (see :func:`before_sink`), the sink (device
        service) and the app; on a failure the sink is closed."""
        parts = before_sink(self.spec, self.cfg, self.clock, dict(self.parts or {}))
        self.sink = make_sink(self.spec, self.cfg, self.clock)
        try:
            self.app = self.spec.build_function()(self.cfg, self.sink, self.clock, **parts)
        except BaseException:
            self.sink.close()
            raise
        return self.app

    def start(self) -> None:
        """Build if not built, start the service, run the app in a thread."""
        if self.app is None:
            self.build()
        self.sink.start()
        self._thread = threading.Thread(target=self.app.run, args=(self.stop_event,),
                                        name=f"{self.cfg.device.id}-app", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the app (it closes its parts; ``timeout_s`` seconds at most), let its last
        events leave (``flush_s``), then close the service."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.sink is not None:
            if self._thread is not None and not self.sink.flush(self.flush_s):
                log.warning("%s: stopped with events not yet acknowledged (kept in the "
                            "outbox)", self.cfg.device.id)
            self.sink.close()


def before_sink(spec: AppSpec, cfg: Any, clock: Any, parts: dict) -> dict:
    """``parts`` with what the app builds before its event sink exists: the build module's
    optional ``before_sink(cfg, clock, **parts) -> parts`` (the door locks its relay before
    the outbox opens, which can take seconds on a damaged disk)."""
    module = importlib.import_module(spec.build_module) if spec.build else None
    early = getattr(module, "before_sink", None)
    return early(cfg, clock, **parts) if early is not None else parts


def make_sink(spec: AppSpec, cfg: Any, clock: Any):
    """The app's event sink: a DeviceService, or a :class:`WatchdogSink` for a config
    without an outbox (the gateway)."""
    if not hasattr(cfg, "outbox"):
        return WatchdogSink()
    from storeedge.firmware.common.service import DeviceService
    return DeviceService(cfg, clock=clock, app=spec.kind)


def run_app(spec: AppSpec, argv: list[str] | None = None, *,
            parser: argparse.ArgumentParser | None = None, clock: Any = None) -> int:
    """An app's ``main``: parse, load, build, run until SIGTERM/SIGINT, close; the exit code.

    Exit codes: 0 after a clean stop or a good ``--validate-config``; 1 for a bad config
    (kept from before the runner: unit files and tests rely on it) and for an expected
    failure while building (missing device file, refused model...); a build failure that is
    a storeedge error with its own ``exit_code`` keeps 1 as well, for the same reason.
    """
    parser = parser or app_parser(spec.kind, spec.summary)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_app_config(args, spec.config_class())
    except AppExit as done:
        return exit_code_of(done)
    return serve(spec, cfg, args.config, clock=clock)


def serve(spec: AppSpec, cfg: Any, config_path: str, *, clock: Any = None) -> int:
    """Run a loaded app in the foreground until a signal (see :func:`run_app`)."""
    from storeedge.drivers.clock import SystemClock
    runner = AppRunner(spec, cfg, clock or SystemClock())
    try:
        runner.build()
    except Exception as exc:
        if not expected_failure(exc):
            raise
        print(f"storeedge {spec.kind}: {failure_line(exc)}", file=sys.stderr)
        return 1
    stop = stop_event_on_signals()
    restarter = _live(runner.app, config_path, stop)
    runner.sink.start()
    notify_ready()
    try:
        runner.app.run(stop)
    finally:
        runner.sink.close()
    restarter.reexec_if_requested()
    return 0


def _live(app: Any, config_path: str, stop: threading.Event):
    """Watch the config file and apply what the app can apply live; the Restarter."""
    from storeedge.firmware.common.liveconfig import ConfigWatcher, Restarter
    restarter = Restarter(stop)
    live = app.serve_config(config_path, restarter)
    if live is not None:
        ConfigWatcher(config_path, live, stop).start()
    return restarter
