"""Config of the freezer app: the ``freezer:`` section next to the common device sections.

Example (``docs/freezer.md`` has the full reference)::

    device: {id: fz-1, kind: freezer, store: s0042}
    freezer:
      timezone: Europe/Paris
      units:
        ice1: {kind: frozen, probes: [top, bottom],
               defrost: {starts: ["02:00", "14:00"]}, door: {pin: 17}}
      probes:
        top:    {rom: 28-00000a1b2c3d,
                 limits: {H: {limit_c: -15}, HH: {limit_c: -10, delay_s: 300}}}
        bottom: {rom: 28-00000a1b2c3e, limits: {H: {limit_c: -15}}}

Quote times of day (``"06:00"``): unquoted, YAML 1.1 reads ``06:00`` as the number 360.
"""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storeedge.config import ConfigError, section, setting
from storeedge.settings import DeviceConfig
from storeedge.firmware.freezer.rules import (LEVELS, MODES, AlarmPolicy, Condition, FreezerRules,
                                              ProbeRules, Suppression, UnitRules, parse_hhmm)
from storeedge.firmware.freezer.state import Storage

ROM_PATTERN = r"[0-9a-f]{2}-[0-9a-f]{12}"
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
COMPLIANCE_DEFAULT = {"chilled": 5.0, "frozen": -18.0}


def _check_times(key: str, times: list[str]) -> None:
    for i, t in enumerate(times):
        try:
            parse_hhmm(t)
        except ValueError as exc:
            raise ConfigError(f"{key}[{i}]", str(exc)) from None


@section
class ConditionSection:
    """One limit of a probe (LL, L, H or HH); ``limit_c: null`` leaves it off."""

    limit_c: float | None = setting(None, unit="degC", min=-55, max=60,
                                    doc="alarm beyond this temperature; null: no such limit")
    delay_s: float = setting(600.0, unit="s", min=0, max=86400,
                             doc="the window value must stay beyond the limit this long")
    window_s: float = setting(900.0, unit="s", min=1, max=86400,
                              doc="span of readings the mode looks at (>= delay_s)")
    mode: str = setting("average", choices=MODES,
                        doc="any: worst reading, all: best reading, average: mean")
    deadband_c: float = setting(1.0, unit="degC", min=0, max=10,
                                doc="clears only once back this far inside the limit")

    def check(self) -> None:
        if self.delay_s > self.window_s:
            raise ConfigError("delay_s", f"{self.delay_s:g} s is longer than window_s "
                              f"({self.window_s:g} s): the window must cover the readings the "
                              f"delay is judged on")


@section
class LimitsSection:
    """The four limits of a probe; they must rise LL < L < H < HH."""

    LL: ConditionSection = setting(ConditionSection, doc="low-low (critical)")
    L: ConditionSection = setting(ConditionSection, doc="low (warning)")
    H: ConditionSection = setting(ConditionSection, doc="high (warning)")
    HH: ConditionSection = setting(ConditionSection, doc="high-high (critical)")

    def check(self) -> None:
        set_ = [(lv, getattr(self, lv).limit_c) for lv in LEVELS
                if getattr(self, lv).limit_c is not None]
        for (lo, lo_c), (hi, hi_c) in zip(set_, set_[1:]):
            if hi_c <= lo_c:
                raise ConfigError(f"{hi}.limit_c", f"{hi_c:g} degC must be above {lo}.limit_c "
                                  f"({lo_c:g} degC): limits rise LL < L < H < HH")


@section
class ProbeSection:
    """One DS18B20 probe."""

    rom: str = setting("", doc="1-Wire ROM id as Linux shows it, e.g. 28-00000a1b2c3d",
                       pattern=ROM_PATTERN + "|")
    interval_s: float = setting(60.0, unit="s", min=10, max=900, doc="sampling interval")
    fast_interval_s: float = setting(15.0, unit="s", min=10, max=900,
                                     doc="interval while a condition is pending or in alarm")
    limits: LimitsSection = setting(LimitsSection)

    def check(self) -> None:
        if not self.rom:
            raise ConfigError("rom", "missing: every probe needs its ROM id (see "
                              "`storeedge freezer probes`)")
        if self.fast_interval_s > self.interval_s:
            raise ConfigError("fast_interval_s", f"{self.fast_interval_s:g} s is slower than "
                              f"interval_s ({self.interval_s:g} s)")


@section
class DefrostSection:
    """The unit's defrost schedule: high alarms wait during defrost + recovery, up to a cap."""

    starts: list[str] = setting([], doc='defrost start times, local "HH:MM"')
    duration_s: float = setting(1800.0, unit="s", min=60, max=7200, doc="heater time")
    recovery_s: float = setting(1200.0, unit="s", min=0, max=7200,
                                doc="pull-down time after the heater")
    cap_s: float = setting(3600.0, unit="s", min=60, max=14400,
                           doc="hard cap on the suppression from each start")

    def check(self) -> None:
        _check_times("starts", self.starts)


@section
class DoorSection:
    """The door contact (gpiozero input): high alarms wait while restocking, up to a cap."""

    pin: int | None = setting(None, min=0, max=27, doc="BCM GPIO of the contact; null: none")
    open_when: str = setting("high", choices=("high", "low"),
                             doc="pin level when the door is open (pull-up, reed closed = low)")
    grace_s: float = setting(300.0, unit="s", min=0, max=3600,
                             doc="high alarms keep waiting this long after the door closes")
    cap_s: float = setting(900.0, unit="s", min=60, max=7200,
                           doc="hard cap on door suppression from the opening")


@section
class UnitSection:
    """A cabinet (a freezer or chiller) and the probes in it."""

    kind: str = setting("frozen", choices=("frozen", "chilled"), doc="what it stores")
    compliance_max_c: float | None = setting(None, unit="degC", min=-40, max=10,
                                             doc="HACCP limit; null: 5 chilled, -18 frozen")
    probes: list[str] = setting([], doc="names of the probes (keys of freezer.probes)")
    defrost: DefrostSection = setting(DefrostSection)
    door: DoorSection = setting(DoorSection)

    def check(self) -> None:
        if not self.probes:
            raise ConfigError("probes", "a unit needs at least one probe")


@section
class AlarmSection:
    """Repeats, escalation and sensor health."""

    repeat_s: float = setting(900.0, unit="s", min=60, max=86400,
                              doc="repeat an unacknowledged alarm this often, escalating")
    escalation: list[str] = setting(["store", "manager", "district"],
                                    doc="who each repeat notifies (the last one repeats)")
    fault_after_reads: int = setting(3, unit="reads", min=1, max=100,
                                     doc="bad reads in a row before a sensor-fault alarm")
    silent_after_s: float = setting(600.0, unit="s", min=60, max=86400,
                                    doc="no trusted reading this long: sensor-silent alarm")
    state_path: str | None = setting("alarms.json", doc="open alarms, kept across restarts "
                                                        "(data partition); null: memory only")

    def check(self) -> None:
        if not self.escalation:
            raise ConfigError("escalation", "needs at least one level")


@section
class OneWireSection:
    """Where the probes are read."""

    backend: str = setting("sysfs", choices=("sysfs", "sim"),
                           doc="sysfs: the kernel's w1_therm files; sim: simulated freezers")
    root: str | None = setting(None, doc="sysfs root; null: /sys/bus/w1/devices (sysfs) or a "
                                         "temp folder (sim)")
    source: str = setting("w1_slave", choices=("w1_slave", "temperature"),
                          doc="file read per probe (w1_slave shows the scratchpad)")
    stale_after_s: float = setting(1800.0, unit="s", min=300, max=86400,
                                   doc="identical raw bytes this long: stale probe")


@section
class HaccpSection:
    """HACCP records."""

    checks: list[str] = setting(["06:00", "18:00"], doc='check times, local "HH:MM"')
    path: str = setting("haccp.jsonl", doc="append-only record file (data partition)")
    missed_after_s: float = setting(1800.0, unit="s", min=60, max=86400,
                                    doc="a check later than this is recorded as missed")

    def check(self) -> None:
        if not self.checks:
            raise ConfigError("checks", "needs at least one check time")
        _check_times("checks", self.checks)


@section
class FreezerSection:
    """The freezer monitor."""

    timezone: str = setting("UTC", doc="IANA time zone of the store (check and defrost times)")
    onewire: OneWireSection = setting(OneWireSection)
    units: dict[str, UnitSection] = setting({}, doc="cabinets by name")
    probes: dict[str, ProbeSection] = setting({}, doc="probes by name")
    alarms: AlarmSection = setting(AlarmSection)
    haccp: HaccpSection = setting(HaccpSection)
    telemetry_batch_s: float = setting(300.0, unit="s", min=10, max=3600,
                                       doc="readings are sent in batches this long")
    console_port: str | None = setting(None, doc="serial port of the technician console run "
                                                 "inside the app (e.g. /dev/ttyGS0); null: none")

    def check(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("timezone", f"unknown time zone {self.timezone!r} "
                              f"(IANA names, e.g. Europe/Paris)") from None
        if not self.units:
            raise ConfigError("units", "at least one unit is needed")
        for kind, names in (("units", self.units), ("probes", self.probes)):
            for name in names:
                if not re.fullmatch(NAME_PATTERN, name):
                    raise ConfigError(f"{kind}.{name}", f"name {name!r} must be 1-32 of a-z, "
                                      f"0-9, '_' or '-' (it appears in alarm ids and events)")
        self._check_membership()
        roms: dict[str, str] = {}
        for name, probe in self.probes.items():
            if probe.rom in roms:
                raise ConfigError(f"probes.{name}.rom", f"{probe.rom} is also probe "
                                  f"{roms[probe.rom]!r}")
            roms[probe.rom] = name

    def _check_membership(self) -> None:
        owner: dict[str, str] = {}
        known = ", ".join(sorted(self.probes)) or "none"
        for uname, unit in self.units.items():
            for i, pname in enumerate(unit.probes):
                if pname not in self.probes:
                    raise ConfigError(f"units.{uname}.probes[{i}]", f"unknown probe "
                                      f"{pname!r} (probes defined: {known})")
                if pname in owner:
                    raise ConfigError(f"units.{uname}.probes[{i}]", f"probe {pname!r} is "
                                      f"already in unit {owner[pname]!r}")
                owner[pname] = uname
        for pname in self.probes:
            if pname not in owner:
                raise ConfigError(f"probes.{pname}", "belongs to no unit: list it in a "
                                  "unit's probes")


@section
class FreezerConfig(DeviceConfig):
    """The freezer device's config file."""

    freezer: FreezerSection = setting(FreezerSection)


def storage_of(fz: FreezerSection) -> Storage:
    """The app's record files from the config."""
    return Storage(fz.haccp.path, fz.alarms.state_path, fz.haccp.missed_after_s)


def build_rules(fz: FreezerSection) -> FreezerRules:
    """The plain rules the app logic runs on, from a validated ``freezer`` section."""
    units = {name: _unit_rules(name, u) for name, u in fz.units.items()}
    owner = {p: name for name, u in fz.units.items() for p in u.probes}
    probes = {name: ProbeRules(name, p.rom, owner[name], _conditions(p.limits),
                               p.interval_s, p.fast_interval_s)
              for name, p in fz.probes.items()}
    a = fz.alarms
    policy = AlarmPolicy(a.repeat_s, tuple(a.escalation), a.fault_after_reads, a.silent_after_s)
    return FreezerRules(units, probes, policy, fz.timezone, tuple(fz.haccp.checks),
                        fz.telemetry_batch_s, fz.onewire.stale_after_s)


def _unit_rules(name: str, u: UnitSection) -> UnitRules:
    limit = COMPLIANCE_DEFAULT[u.kind] if u.compliance_max_c is None else u.compliance_max_c
    d, door = u.defrost, u.door
    sup = Suppression(tuple(d.starts), d.duration_s, d.recovery_s, d.cap_s, door.grace_s,
                      door.cap_s)
    return UnitRules(name, u.kind, limit, tuple(u.probes), sup, door.pin)


def _conditions(limits: LimitsSection) -> tuple[Condition, ...]:
    out = []
    for level in LEVELS:
        c = getattr(limits, level)
        if c.limit_c is not None:
            out.append(Condition(level, c.limit_c, c.delay_s, c.window_s, c.mode, c.deadband_c))
    return tuple(out)
