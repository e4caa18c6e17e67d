"""Child process for test_kill.py: a real door (SQLite state file, mock pins) in its own
process.  ``use``: present the code and stop dead between the durable commit and the relay
(the parent SIGKILLs us there).  ``retry``: a fresh boot on the same state presents it again."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.doorkeys import load_signing_key
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door


def main(mode: str, workdir: str) -> int:
    work = Path(workdir)
    factory = new_mock_factory()
    relay_pin = factory.pin(17)
    marker = work / "committed.json"

    def on_committed(cred):
        # atomically: the parent polls for the file and reads it at once, and write_text
        # creates it empty before it writes (a read in between found "" and failed)
        part = marker.with_suffix(".part")
        part.write_text(json.dumps({"cred": cred.cred_hex, "relay_state": relay_pin.state}))
        os.replace(part, marker)
        time.sleep(3600)                     # the parent kills us here

    opts = DoorOptions(store="s0042", door="door-1", state_path=str(work / "door.db"),
                       wiring=DoorWiring(RelayWiring(17), InputWiring(27)))
    ctl = build_door(opts, SystemClock(), DoorSeams(sink=lambda rec: None, pin_factory=factory,
                                                    on_committed=on_committed if mode == "use"
                                                    else None))
    key = load_signing_key(work / "key.pem")
    ctl.p.state.trust_key(key.kid, key.public)
    factory.pin(27).drive_low()              # door closed
    d = ctl.present((work / "code.txt").read_text().strip(), "serial")
    print(json.dumps({"granted": d.granted, "reason": d.reason.value,
                      "relay_states": [s.state for s in relay_pin.states]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
