"""What every command's ``main(argv)`` shares (device apps, the store server, tools): arguments,
config loading, subcommands, one-line errors, logging, signals.

A device app's ``main`` is :func:`storeedge.firmware.common.runner.run_app`; a command that
is not a device app (the store server, a tool) uses the pieces::

    def main(argv):
        done = run_subcommand(argv, {"counts": counts_main})   # ``tool counts ...``
        if done is not None:
            return done
        args = app_parser("store-server", "store events from every device").parse_args(argv)
        try:
            cfg = load_app_config(args, StoreServerConfig)
        except AppExit as end:                # --validate-config done, or a bad config
            return end.exit_code
        ...
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, Mapping

from storeedge.config import load_config
from storeedge.exc import (AppExit, ConfigError,  # AppExit re-exported for the commands
                           StoreedgeError)

OPTIONS_WITH_VALUE = ("--config", "--log-level")
"""The common options that take a value (skipped when looking for a subcommand)."""


def app_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--config``, ``--validate-config`` and ``--log-level``."""
    parser = argparse.ArgumentParser(prog=f"storeedge {prog}", description=description)
    parser.add_argument("--config", required=True, metavar="FILE", help="YAML config file")
    parser.add_argument("--validate-config", action="store_true",
                        help="check the config file, print OK or the first error, and exit")
    parser.add_argument("--log-level", default=None,
                        choices=("debug", "info", "warning", "error"),
                        help="override log.level from the config")
    parser.set_defaults(_app=prog)
    return parser


def load_app_config(args: argparse.Namespace, cls: type) -> Any:
    """Load ``args.config`` as ``cls``, set up logging and one-line errors; the config.

    Raises:
        AppExit: the caller returns its ``exit_code``: 0 after ``--validate-config`` printed
            ``OK: <file>``; 1 after a bad config printed ``config error: ...`` on stderr (1,
            not ConfigError's 78: the exit status of a bad config is kept as it always was).
    """
    try:
        cfg = load_config(args.config, cls)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise AppExit(1, str(exc)) from None
    if args.validate_config:
        print(f"OK: {args.config}")
        raise AppExit(0)
    setup_logging(args.log_level or cfg.log.level)
    one_line_errors(getattr(args, "_app", "app"))
    return cfg


def one_line_errors(prog: str) -> None:
    """Expected failures end the app with one line on stderr and exit code 1, no traceback.

    Expected: a :class:`~storeedge.exc.StoreedgeError` (busy outbox, refused key, missing
    model...) or an OSError (a missing serial port, an unreadable file). Anything else (a bug)
    keeps its traceback, and ``STOREEDGE_TRACEBACK=1`` shows it for every failure.
    """
    def hook(exc_type, exc, tb) -> None:
        if expected_failure(exc) and not os.environ.get("STOREEDGE_TRACEBACK"):
            sys.stderr.write(f"storeedge {prog}: {failure_line(exc)}\n")
            sys.stderr.flush()
            return                          # the interpreter then exits with status 1
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook


def expected_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure a person can fix (see :func:`one_line_errors`)."""
    return isinstance(exc, (OSError, StoreedgeError))


def failure_line(exc: BaseException) -> str:
    """``exc`` on one line, with how to fix a missing or busy device file."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) or "No such file or directory" in text:
        text += " (check the path or port named in the config, and that the part is plugged in)"
    elif isinstance(exc, PermissionError) or "Permission denied" in text:
        text += " (check the owner and mode of that file, or the app user's groups, e.g. dialout)"
    return text


def find_subcommand(argv: list[str], names: Mapping[str, Any] | tuple[str, ...],
                    options_with_value: tuple[str, ...] = OPTIONS_WITH_VALUE
                    ) -> tuple[str | None, list[str]]:
    """The subcommand named in ``argv`` and ``argv`` without it: ``(None, argv)`` if none.

    The subcommand is the first word that is not an option (nor the value of one of
    ``options_with_value``), so ``gateway status --config F`` and ``freezer --config F
    probes`` both name theirs.  A first word that is not in ``names`` means no subcommand.
    """
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in options_with_value:
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        if word in names:
            return word, argv[:i] + argv[i + 1:]
        return None, list(argv)
    return None, list(argv)


def run_subcommand(argv: list[str], commands: Mapping[str, Callable[[list[str]], int]],
                   options_with_value: tuple[str, ...] = OPTIONS_WITH_VALUE) -> int | None:
    """Run the subcommand ``argv`` names (see :func:`find_subcommand`) with the rest of
    ``argv``; its exit code, or None when ``argv`` names none (the caller runs the app).
    """
    name, rest = find_subcommand(argv, commands, options_with_value)
    if name is None:
        return None
    return commands[name](rest)



def setup_logging(level: str = "info") -> None:
    """Plain single-line logs to stderr (journald adds the time on a device)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (orderly shutdown from systemd or Ctrl-C).

    A second SIGTERM or SIGINT ends the process at once (exit status 128 + signal number),
    so a stop that hangs (a blocked port, a stuck thread) can always be forced.

    The handler itself only writes the signal number to a pipe: a Python signal handler runs
    in the main thread between two bytecodes, where ``Event.set`` would deadlock if the main
    thread was interrupted holding the event's lock, and a log line can hit a reentrant write
    on stderr.  A watcher thread reads the pipe, logs and sets the event.  SIGUSR1 dumps
    every thread's stack to stderr (the journal), for a device that hangs.
    """
    stop = threading.Event()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def handler(signum, _frame):
        try:
            os.write(write_fd, bytes([signum]))
        except OSError:            # pipe full: a stop is already on its way
            pass

    def watch() -> None:
        signum = os.read(read_fd, 1)[0]
        logging.getLogger("storeedge").info("signal %d: stopping", signum)
        stop.set()
        signum = os.read(read_fd, 1)[0]
        # a second SIGTERM/SIGINT always exits, even if the orderly stop hangs somewhere (no
        # logging call: a stuck thread may hold the handler's lock)
        os.write(2, f"storeedge: signal {signum} again: exiting now\n".encode("ascii"))
        os._exit(128 + signum)

    threading.Thread(target=watch, name="signal-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return stop
