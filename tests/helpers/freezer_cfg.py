"""A freezer device config for the page's end-to-end test (one frozen cabinet, two probes)."""
from __future__ import annotations

from storeedge.config import config_from_dict
from storeedge.firmware.freezer.config import FreezerConfig

ROMS = {"top": "28-00000a1b2c01", "bottom": "28-00000a1b2c02"}


def freezer_config(tmp_path, link: dict, security: dict) -> FreezerConfig:
    high = {"limit_c": -15.0, "delay_s": 600, "window_s": 600, "mode": "average"}
    return config_from_dict({
        "device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
        "link": link, "security": security,
        "outbox": {"path": str(tmp_path / "fz-outbox.db")},
        "freezer": {
            "onewire": {"backend": "sim", "root": str(tmp_path / "w1")},
            "haccp": {"path": str(tmp_path / "haccp.jsonl"), "checks": ["06:00", "18:00"]},
            "alarms": {"repeat_s": 900, "fault_after_reads": 3, "silent_after_s": 600,
                       "state_path": str(tmp_path / "alarms.json")},
            "telemetry_batch_s": 300,
            "units": {"ice1": {"kind": "frozen", "probes": ["top", "bottom"]}},
            "probes": {"top": {"rom": ROMS["top"], "limits": {"H": high}},
                       "bottom": {"rom": ROMS["bottom"], "limits": {"H": high}}},
        },
        "log": {"level": "warning"},
    }, FreezerConfig)
