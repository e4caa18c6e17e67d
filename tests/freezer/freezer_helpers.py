"""Helpers shared by the freezer tests (config builders)."""
from __future__ import annotations


ROMS = {"top": "28-00000a1b2c01", "bottom": "28-00000a1b2c02", "dairy": "28-00000a1b2c03"}


def freezer_config_dict(tmp_path) -> dict:
    """A complete freezer device config: a freezer (2 probes, door on GPIO 17), a chiller."""
    high = {"limit_c": -15.0, "delay_s": 600, "window_s": 600, "mode": "average"}
    return {
        "device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "security": {"insecure": True},          # the default plain link (no broker here)
        "freezer": {
            "onewire": {"backend": "sim", "root": str(tmp_path / "w1")},
            "haccp": {"path": str(tmp_path / "haccp.jsonl"), "checks": ["06:00", "18:00"]},
            "alarms": {"repeat_s": 900, "fault_after_reads": 3, "silent_after_s": 600,
                       "state_path": str(tmp_path / "alarms.json")},
            "telemetry_batch_s": 300,
            "units": {
                "ice1": {"kind": "frozen", "probes": ["top", "bottom"],
                         "door": {"pin": 17, "grace_s": 300, "cap_s": 900}},
                "dairy": {"kind": "chilled", "probes": ["dairy"]},
            },
            "probes": {
                "top": {"rom": ROMS["top"], "limits": {
                    "H": high, "HH": {"limit_c": -10.0, "delay_s": 300, "window_s": 300,
                                      "mode": "all"}}},
                "bottom": {"rom": ROMS["bottom"], "limits": {"H": high}},
                "dairy": {"rom": ROMS["dairy"], "limits": {
                    "L": {"limit_c": -1.0, "delay_s": 600, "window_s": 600},
                    "H": {"limit_c": 6.0, "delay_s": 600, "window_s": 600}}},
            },
        },
    }
