"""Live config: a running freezer (embedded console on a pty, simulated 1-Wire bus) applies a
`commit confirmed` at once and the automatic rollback puts the old values back live."""
from __future__ import annotations

import os
import threading

import pytest
import yaml
from helpers.console_rig import CHEAP, SECRET, PtyTerminal
from helpers.console_rig import ROM_TOP, freezer_dict

from storeedge.drivers.clock import SimulatedClock
from storeedge.config import config_from_dict
from storeedge.firmware.console.secret import write_secret_file


@pytest.fixture
def running_freezer(tmp_path):
    from storeedge.firmware.common.service import DeviceService
    from storeedge.firmware.console.embed import EmbeddedConsole
    from storeedge.firmware.console.targets import FreezerTarget
    from storeedge.firmware.freezer.app import FreezerApp
    from storeedge.firmware.freezer.config import FreezerConfig, build_rules
    from storeedge.firmware.freezer.wiring import freezer_live
    from storeedge.firmware.freezer.wiring import make_bus
    data = freezer_dict(tmp_path)
    path = tmp_path / "fz.yaml"
    path.write_text(yaml.safe_dump(data))
    write_secret_file(tmp_path / "console.secret", SECRET, **CHEAP)
    cfg = config_from_dict(data, FreezerConfig)
    clock = SimulatedClock()
    rules = build_rules(cfg.freezer)
    bus = make_bus(cfg.freezer, rules, clock)
    svc = DeviceService(cfg, clock=clock, app="freezer")
    app = FreezerApp(rules, bus, svc, clock, cfg.freezer.haccp.path)
    restarts: list[list[str]] = []
    live = freezer_live(app, cfg, restarts.append)
    master, slave = os.openpty()
    console = EmbeddedConsole.start(port_url=os.ttyname(slave), config_path=str(path),
                                    service=svc, target=FreezerTarget(app, FreezerConfig, live),
                                    clock=clock)
    stop = threading.Event()
    loop = threading.Thread(target=app.run, args=(stop,), kwargs={"max_sleep_s": 0.05},
                            daemon=True)
    loop.start()
    term = PtyTerminal(master)
    term.send(b"\r")
    term.expect("Password: ")
    term.send(SECRET.encode() + b"\r")
    term.expect("fz-1> ")
    yield term, app, clock, restarts, path
    stop.set()
    loop.join(5)
    console.stop()
    svc.close()
    bus.close()
    os.close(slave)
    os.close(master)


def limit(app, probe="top"):
    [cond] = [c for c in app.rules.probes[probe].conditions if c.level == "H"]
    return cond.limit_c


def test_commit_confirmed_applies_live_and_rolls_back_live(running_freezer):
    term, app, clock, restarts, path = running_freezer
    assert limit(app) == -15.0
    term.send(b"set freezer.probes.top.limits.H.limit_c -10\rdiff\r")
    screen = term.expect("fz-1*> ") + term.expect("fz-1*> ")
    assert "applied live: freezer.probes.top.limits.H.limit_c" in screen
    term.send(b"commit confirmed 1\r")
    screen = term.expect("fz-1> ")
    assert "rolls back to version 1 in 1 min unless 'confirm'" in screen
    assert limit(app) == -10.0 and app.engine.rules is app.rules      # live, same app
    clock.advance(61)                                 # the console's timer rolls back ...
    term.expect("commit not confirmed in time: rolled back")
    assert limit(app) == -15.0                        # ... and the app runs the old limit
    assert restarts == [] and app.step_errors == 0
    assert yaml.safe_load(path.read_text())["freezer"]["probes"]["top"]["rom"] == ROM_TOP


def test_interval_change_reschedules_and_restart_keys_are_announced(running_freezer):
    term, app, clock, restarts, path = running_freezer
    term.send(b"set freezer.probes.top.interval_s 30\rcommit\r")
    assert "applied live: freezer.probes.top.interval_s" in term.expect("fz-1> ")
    assert app.sampler.probes["top"].interval_s == 30
    term.send(b"set freezer.onewire.stale_after_s 600\rdiff\r")
    assert "needs an app restart" in term.expect("fz-1*> ") + term.expect("fz-1*> ")
    term.send(b"commit\r")
    term.expect("fz-1> ")
    assert restarts == [["freezer.onewire.stale_after_s"]]
