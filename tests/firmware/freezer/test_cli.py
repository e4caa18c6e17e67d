"""``storeedge freezer``: config validation, probes/enrolment, HACCP CSV export."""
from __future__ import annotations

import copy
import csv
import datetime as dt
import io

import pytest

from helpers.freezer_rig import ROMS, freezer_config_dict
from storeedge.cli import main as storeedge
from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.onewire.sim import FreezerPhysics, SimulatedBus, ThermalModel
from storeedge.config import config_from_dict, write_config_atomic
from storeedge.firmware.freezer.config import FreezerConfig, build_rules
from storeedge.firmware.freezer.enrol import enrol
from storeedge.firmware.freezer.haccp import HaccpBook


@pytest.fixture
def cfg_file(tmp_path):
    def write(data=None, name="freezer.yaml"):
        path = tmp_path / name
        write_config_atomic(path, data if data is not None else freezer_config_dict(tmp_path))
        return str(path)
    return write


def test_validate_config_ok(cfg_file, capsys):
    assert storeedge(["freezer", "--config", cfg_file(), "--validate-config"]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def _bad(tmp_path, edit):
    data = copy.deepcopy(freezer_config_dict(tmp_path))
    edit(data["freezer"])
    return data


BAD_CONFIGS = [
    ("limits out of order",
     lambda f: f["probes"]["top"]["limits"]["HH"].update(limit_c=-16.0),
     "freezer.probes.top.limits.HH.limit_c (line", "must be above H.limit_c"),
    ("unknown probe id",
     lambda f: f["units"]["ice1"]["probes"].append("middle"),
     "freezer.units.ice1.probes[2] (line", "unknown probe 'middle'"),
    ("delay longer than the window",
     lambda f: f["probes"]["dairy"]["limits"]["H"].update(delay_s=1200),
     "freezer.probes.dairy.limits.H.delay_s (line", "longer than window_s (600 s)"),
    ("interval below 10 s",
     lambda f: f["probes"]["top"].update(interval_s=5),
     "freezer.probes.top.interval_s (line", "below the minimum 10 s"),
    ("bad ROM id",
     lambda f: f["probes"]["top"].update(rom="28-XYZ"),
     "freezer.probes.top.rom (line", "does not match"),
    ("same ROM twice",
     lambda f: f["probes"]["bottom"].update(rom=ROMS["top"]),
     "freezer.probes.bottom.rom", "is also probe 'top'"),
    ("probe in no unit",
     lambda f: f["units"]["ice1"].update(probes=["top"]),
     "freezer.probes.bottom", "belongs to no unit"),
    ("unknown key",
     lambda f: f["probes"]["top"].update(intervall_s=60),
     "freezer.probes.top.intervall_s (line", "unknown key"),
    ("bad probe name",
     lambda f: (f["probes"].update(Top=f["probes"].pop("top")),
                f["units"]["ice1"].update(probes=["Top", "bottom"])),
     "freezer.probes.Top", "must be 1-32 of a-z"),
    ("bad defrost time",
     lambda f: f["units"]["ice1"].update(defrost={"starts": ["25:00"]}),
     "freezer.units.ice1.defrost.starts[0]", "not a time of day"),
]


@pytest.mark.parametrize("what,edit,key,reason", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_is_refused_with_key_line_and_reason(tmp_path, cfg_file, capsys, what,
                                                        edit, key, reason):
    path = cfg_file(_bad(tmp_path, edit))
    assert storeedge(["freezer", "--config", path, "--validate-config"]) == 1
    err = capsys.readouterr().err
    assert key in err and reason in err, err


def test_probes_subcommand_lists_rom_ids(cfg_file, capsys):
    code = storeedge(["freezer", "probes", "--config", cfg_file()])
    out = capsys.readouterr().out
    assert code == 0, out
    for rom in ROMS.values():
        assert rom in out
    assert out.count(" ok ") == 3 and "ms" in out


def test_enrolment_flags_clones_missing_and_unconfigured_probes(tmp_path):
    clock = SimulatedClock()
    rules = build_rules(config_from_dict(freezer_config_dict(tmp_path), FreezerConfig).freezer)
    bus = SimulatedBus(clock=clock)
    cab = ThermalModel(FreezerPhysics(), clock.time())
    bus.add_probe(ROMS["top"], cab)                                   # genuine
    bus.add_probe(ROMS["bottom"], cab, conversion_ms=28.0)            # fast clone
    bus.add_probe("28-3c01d607e3aa", cab)                             # clone ROM, not configured
    by_rom = {r.rom: r for r in enrol(bus, rules)}
    assert by_rom[ROMS["top"]].verdict == "ok"
    assert 580 < by_rom[ROMS["top"]].conversion_ms < 620
    assert by_rom[ROMS["bottom"]].verdict == "suspect"
    assert "likely a clone" in " ".join(by_rom[ROMS["bottom"]].notes)
    assert by_rom[ROMS["dairy"]].verdict == "missing"
    other = by_rom["28-3c01d607e3aa"]
    assert other.verdict == "unconfigured" and "not a genuine" in " ".join(other.notes)
    bus.close()


def test_haccp_export_csv(tmp_path, cfg_file, capsys):
    data = freezer_config_dict(tmp_path)
    rules = build_rules(config_from_dict(data, FreezerConfig).freezer)
    day = dt.datetime(2026, 11, 24, 5, 0, tzinfo=dt.timezone.utc).timestamp()
    book = HaccpBook(data["freezer"]["haccp"]["path"], rules, day)
    six, six_pm = day + 3600, day + 13 * 3600
    book.check("ice1", six, {"top": -19.5, "bottom": -20.1}, six + 5)
    rec = book.check("ice1", six_pm, {"top": -14.2, "bottom": None}, six_pm + 5)
    book.acknowledge(rec.id, "JD", "moved stock to ice2", six_pm + 600)
    out = tmp_path / "haccp.csv"
    code = storeedge(["freezer", "haccp-export", "--config", cfg_file(data), "--out", str(out),
                      "--since", "2026-11-24", "--unit", "ice1"])
    assert code == 0 and "2 HACCP records exported" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["result"], r["value_c"]) for r in rows] == [("pass", "-19.50"),
                                                          ("fail", "-14.20")]
    assert rows[1]["corrective_action"] == "moved stock to ice2" and rows[1]["initials"] == "JD"
    assert rows[0]["scheduled_local"] == "2026-11-24T06:00:00+00:00"
    assert rows[1]["probes_c"] == "bottom=- top=-14.20"
    assert storeedge(["freezer", "haccp-export", "--config", cfg_file(data),
                      "--since", "24/11/2026"]) == 1
    assert "not a date" in capsys.readouterr().err


def test_haccp_log_survives_a_torn_last_line(tmp_path):
    data = freezer_config_dict(tmp_path)
    rules = build_rules(config_from_dict(data, FreezerConfig).freezer)
    path = data["freezer"]["haccp"]["path"]
    book = HaccpBook(path, rules, 0.0)
    book.check("dairy", 1_795_000_000.0, {"dairy": 3.0}, 1_795_000_010.0)
    with open(path, "a") as f:
        f.write('{"type":"check","id":"dairy-2')           # power cut mid-write
    again = HaccpBook(path, rules, 0.0)
    assert [r.result for r in again.records()] == ["pass"]
    again.check("dairy", 1_795_043_200.0, {"dairy": 7.5}, 1_795_043_210.0)
    assert [r.result for r in HaccpBook(path, rules, 0.0).records()] == ["pass", "fail"]
