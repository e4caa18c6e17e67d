"""A simulated device: emits numbered ``sim.counter`` events through the real event path.

Used by the fault tests (run as a subprocess and SIGKILLed at random moments; the demo's
in-process counter is :class:`storeedge.firmware.demo.CounterApp`).
It prints ``committed <seq> <n>`` to stdout after each durable emit, so a test knows exactly
which events the device outbox committed.

    python -m storeedge.firmware.common.simdevice --config dev.yaml --rate 200 --count 5000
"""
from __future__ import annotations

import argparse
import sys
import time

from storeedge.cmdline import AppExit, load_app_config
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import DeviceConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storeedge-simdevice")
    parser.add_argument("--config", required=True)
    parser.add_argument("--validate-config", action="store_true")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--count", type=int, default=0, help="stop after n events (0: never)")
    parser.add_argument("--linger", type=float, default=0.0,
                        help="seconds to keep running after the last event (to drain)")
    parser.add_argument("--drain", action="store_true",
                        help="emit nothing; only deliver what the outbox holds, until killed")
    args = parser.parse_args(argv)
    try:
        cfg = load_app_config(args, DeviceConfig)
    except AppExit as done:
        return done.exit_code
    svc = DeviceService(cfg, app="simdevice")
    svc.start()
    start_n = _next_n(svc)
    if args.drain:
        args.count, args.linger = start_n, 10**9
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    n = start_n
    next_t = time.monotonic()
    while args.count == 0 or n < args.count:
        env = svc.emit(SimCounter(n=n))
        sys.stdout.write(f"committed {env.seq} {n}\n")
        sys.stdout.flush()
        n += 1
        next_t += period
        time.sleep(max(0.0, next_t - time.monotonic()))
    deadline = time.monotonic() + args.linger
    while time.monotonic() < deadline:
        svc.heartbeat()
        time.sleep(0.1)
    svc.close()
    return 0


def _next_n(svc: DeviceService) -> int:
    """Continue numbering after the last sim.counter in the outbox (survives restarts)."""
    last = svc.recent_events(1, "sim.counter")
    return last[-1].body["n"] + 1 if last else 0


if __name__ == "__main__":
    raise SystemExit(main())
