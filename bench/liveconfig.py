"""Live config: a committed config applied on a running freezer, against restarting it.

Measured (wall clock, perf_counter, ms), interleaved round by round:
  live     the technician types ``set ...`` then ``commit`` at the console of a running freezer
           monitor (its loop in a thread, simulated 1-Wire bus, real SQLite outbox, versioned
           config store on disk with fsync); timed from the Enter of ``commit`` until the
           app's loop runs with the new limit (version file + live file written and fsynced,
           ruamel round trip, validation, rules rebuilt and swapped).
  restart  the peer a user would pick without live config: commit, then stop the app
           (outbox closed) and start it again from the file, in process (optimistic for the
           peer: no interpreter start, no systemd).

Target: live < 2 s (issue 18).  ``--quick`` runs 5 rounds, default 30.

    python bench/liveconfig.py [--quick] [--rounds N]

Last line printed: one JSON object (medians, p90, ratio restart/live, target met).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # tests/helpers
from helpers.console_rig import CHEAP, SECRET, Terminal  # noqa: E402

from storeedge.drivers.clock import SystemClock  # noqa: E402
from storeedge.config import load_config  # noqa: E402
from storeedge.firmware.common.service import DeviceService  # noqa: E402
from storeedge.firmware.console.auth import LockoutPolicy  # noqa: E402
from storeedge.firmware.console.console import ConsoleParts, build_console  # noqa: E402
from storeedge.firmware.console.secret import hash_secret, parse_hash  # noqa: E402
from storeedge.firmware.console.targets import FreezerTarget  # noqa: E402
from storeedge.firmware.freezer.app import FreezerApp  # noqa: E402
from storeedge.firmware.freezer.config import FreezerConfig, build_rules  # noqa: E402
from storeedge.firmware.freezer.wiring import freezer_live  # noqa: E402
from storeedge.firmware.freezer.wiring import make_bus  # noqa: E402

KEY = "freezer.probes.top.limits.H.limit_c"


def config(folder: Path) -> Path:
    data = {"device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
            "outbox": {"path": str(folder / "outbox.db")},
            "security": {"insecure": True},
            "log": {"level": "warning"},
            "freezer": {"onewire": {"backend": "sim"},
                        "haccp": {"path": str(folder / "haccp.jsonl")},
                        "units": {"ice1": {"kind": "frozen", "probes": ["top"]}},
                        "probes": {"top": {"rom": "28-00000a1b2c01",
                                           "limits": {"H": {"limit_c": -15.0}}}}}}
    path = folder / "fz.yaml"
    path.write_text("# bench freezer\n" + yaml.safe_dump(data, sort_keys=False))
    return path


class Running:
    """A freezer monitor running in a thread, built from the config file."""

    def __init__(self, path: Path, clock):
        self.cfg = load_config(path, FreezerConfig)
        rules = build_rules(self.cfg.freezer)
        self.bus = make_bus(self.cfg.freezer, rules, clock)
        self.svc = DeviceService(self.cfg, clock=clock, app="freezer")
        self.app = FreezerApp(rules, self.bus, self.svc, clock, self.cfg.freezer.haccp.path)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.app.run, args=(self.stop,),
                                       kwargs={"max_sleep_s": 0.05}, daemon=True)
        self.thread.start()

    def limit(self) -> float:
        return next(c.limit_c for c in self.app.rules.probes["top"].conditions if c.level == "H")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.svc.close()
        self.bus.close()


def terminal(path: Path, run: Running, clock) -> Terminal:
    live = freezer_live(run.app, run.cfg, lambda keys: None)
    parts = ConsoleParts(str(path), FreezerTarget(run.app, FreezerConfig, live), run.svc, clock,
                         parse_hash(hash_secret(SECRET, **CHEAP)), "bench")
    term = Terminal(build_console(parts, policy=LockoutPolicy()))
    term.login()
    return term


def wait_for(pred, timeout_s: float = 10.0) -> None:
    end = time.perf_counter() + timeout_s
    while not pred():
        if time.perf_counter() > end:
            raise TimeoutError("the app did not pick the change up")
        time.sleep(0.0005)


def live_round(term: Terminal, run: Running, value: float) -> float:
    term.run(f"set {KEY} {value}")
    t0 = time.perf_counter()
    out = term.run("commit")
    wait_for(lambda: run.limit() == value)
    assert "applied live" in out, out
    return (time.perf_counter() - t0) * 1000


def restart_round(path: Path, clock, value: float) -> float:
    run = Running(path, clock)
    term = terminal(path, run, clock)
    term.run(f"set {KEY} {value}")
    t0 = time.perf_counter()
    term.run("commit")
    run.close()
    run = Running(path, clock)
    wait_for(lambda: run.limit() == value)
    ms = (time.perf_counter() - t0) * 1000
    run.close()
    return ms


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.9 * len(xs))) - 1)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 30)
    clock = SystemClock()
    live_ms, restart_ms = [], []
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        live_dir, peer_dir = Path(tmp, "live"), Path(tmp, "peer")
        live_dir.mkdir(), peer_dir.mkdir()
        live_path, peer_path = config(live_dir), config(peer_dir)
        run = Running(live_path, clock)
        term = terminal(live_path, run, clock)
        try:
            for i in range(rounds):
                value = -14.0 + (i % 10)
                live_ms.append(live_round(term, run, value))
                restart_ms.append(restart_round(peer_path, clock, value))
                print(f"round {i + 1}: live {live_ms[-1]:.1f} ms, restart {restart_ms[-1]:.1f} ms")
        finally:
            run.close()
    live, peer = statistics.median(live_ms), statistics.median(restart_ms)
    print(json.dumps({"bench": "liveconfig", "rounds": rounds,
                      "live_median_ms": round(live, 2), "live_p90_ms": round(p90(live_ms), 2),
                      "restart_median_ms": round(peer, 2),
                      "restart_p90_ms": round(p90(restart_ms), 2),
                      "ratio_restart_over_live": round(peer / live, 2),
                      "target_live_ms": 2000, "target_met": p90(live_ms) < 2000}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
