"""Console test helpers: the test config class, a keystroke-level Terminal, event lookups."""
from __future__ import annotations

import os
import select
import time


from storeedge.config import section, setting
from storeedge.settings import DeviceConfig
from storeedge.firmware.console.targets import SimRig, SimulatedTarget

SECRET = "bench-secret-42"
CHEAP = dict(n=2 ** 10, r=8, p=1)        # fast scrypt for tests; production uses 2**14


@section
class ProbeSection:
    """One probe."""

    rom: str = setting("28-000000000000", doc="ROM id", pattern=r"28-[0-9a-f]{12}")
    interval_s: float = setting(60.0, unit="s", min=10, max=900, doc="sampling interval")


@section
class BenchSection:
    """App section of the test device."""

    threshold_c: float = setting(-18.0, unit="degC", min=-40, max=10, doc="alarm threshold")
    enabled: bool = setting(True, doc="alarms on")
    mode: str = setting("normal", choices=("normal", "defrost"), doc="mode")
    api_token: str | None = setting(None, doc="token", secret=True)
    tags: list[str] = setting([], doc="labels")
    probes: dict[str, ProbeSection] = setting({}, doc="probes by name")


@section
class BenchConfig(DeviceConfig):
    """Device config used by the console tests."""

    bench: BenchSection = setting(BenchSection)


def base_mapping(tmp_path) -> dict:
    return {"device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "security": {"insecure": True},      # the default plain link (no broker here)
            "bench": {"threshold_c": -20.0,
                      "probes": {"p1": {"rom": "28-0316a2797aff", "interval_s": 60}}}}




def make_target(kind, factory, **rig):
    return SimulatedTarget(kind, BenchConfig, factory, rig=SimRig(**rig))




class Terminal:
    """Drives a Session directly: keystrokes in, screen text out."""

    def __init__(self, console):
        self.out = bytearray()
        self.session = console.session(self.out.extend)

    def type(self, text: str | bytes) -> str:
        start = len(self.out)
        self.session.feed(text.encode("ascii") if isinstance(text, str) else text)
        return self.out[start:].decode("ascii")

    def run(self, line: str) -> str:
        return self.type(line + "\r")

    def login(self, secret: str = SECRET) -> str:
        return self.type(secret + "\r")




def events_of(service, prefix="console."):
    return service.recent_events(n=500, type=prefix)


def files_in(path):
    return sorted(os.listdir(path))


WAIT_S = 15.0


class PtyTerminal:
    """The terminal end (master) of a pty pair: what screen/picocom would hold."""

    def __init__(self, master: int):
        self.fd = master
        self.screen = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, text: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        want = text.encode("ascii")
        while want not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; screen:\n"
                                     f"{self.screen.decode('ascii', 'replace')}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    self.screen += os.read(self.fd, 4096)
                except OSError:        # EIO: the device side closed
                    break
        head, _, tail = self.screen.partition(want)
        self.screen = tail
        return (head + want).decode("ascii")


class LoopTerminal:
    """Two pyserial ``loop://`` ports, one per direction (a loop port hears its own output):
    ``keys`` carries what the technician types, ``screen`` what the console prints."""

    def __init__(self):
        from storeedge.drivers.serial import open_port
        self.keys = open_port("loop://")
        self.screen_port = open_port("loop://", timeout=0.05)
        self.screen = b""

    def send(self, data: bytes) -> None:
        self.keys.write(data)

    def expect(self, text: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        want = text.encode("ascii")
        while want not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}; screen:\n"
                                     f"{self.screen.decode('ascii', 'replace')}")
            self.screen += self.screen_port.read(4096)
        head, _, tail = self.screen.partition(want)
        self.screen = tail
        return (head + want).decode("ascii")


ROM_TOP, ROM_DAIRY = "28-00000a1b2c01", "28-00000a1b2c03"


def freezer_dict(tmp_path):
    return {"device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "security": {"insecure": True},                # the default plain link
            "freezer": {
                "onewire": {"backend": "sim"},
                "haccp": {"path": str(tmp_path / "haccp.jsonl"), "checks": ["06:00"]},
                "alarms": {"fault_after_reads": 2},
                "units": {"ice1": {"kind": "frozen", "probes": ["top"]},
                          "dairy": {"kind": "chilled", "probes": ["dairy"]}},
                "probes": {"top": {"rom": ROM_TOP, "limits": {"H": {"limit_c": -15.0}}},
                           "dairy": {"rom": ROM_DAIRY, "limits": {"H": {"limit_c": 6.0}}}}}}
