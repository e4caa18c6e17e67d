"""End to end: simulated freezer -> FreezerApp -> DeviceService -> Mosquitto -> gateway relay
-> Mosquitto -> store server -> SQLite.  Real brokers, real outboxes, real store database."""
from __future__ import annotations

import json
import sqlite3

import pytest

from helpers.freezer_rig import ROMS, freezer_config_dict
from helpers.cmdkit import CommandKit
from helpers.stack import device_security, event_path, link_for, wait_for
from storeedge.drivers.clock import SimulatedClock
from storeedge.config import config_from_dict
from storeedge.events import format_ts
from storeedge.firmware.common.service import DeviceService
from storeedge.firmware.freezer.app import FreezerApp
from storeedge.firmware.freezer.config import FreezerConfig, build_rules, storage_of
from storeedge.firmware.freezer.wiring import make_bus


def store_rows(db, type_):
    conn = sqlite3.connect(db)
    try:
        return [(prio, ts, json.loads(body)) for prio, ts, body in conn.execute(
            "SELECT prio, ts, body FROM events WHERE dev='fz-1' AND type=? AND placeholder=0 "
            "ORDER BY seq", (type_,))]
    except sqlite3.OperationalError:          # table not created yet
        return []
    finally:
        conn.close()


@pytest.fixture
def stack(broker_factory, tmp_path):
    with event_path(broker_factory, tmp_path) as (down, _up, relay, store):
        yield down, relay, store, tmp_path


class Freezer:
    """The freezer device on a simulated clock, its events going out through DeviceService."""

    def __init__(self, tmp_path, url, command_pub=None):
        data = freezer_config_dict(tmp_path)
        data["link"] = link_for(url, "fz-1", "freezer")
        data["security"] = device_security(url, "fz-1")       # its bundle's keys
        if command_pub:
            data["security"]["command_pub"] = command_pub
        self.cfg = config_from_dict(data, FreezerConfig)
        self.rules = build_rules(self.cfg.freezer)
        self.clock = SimulatedClock()
        self.bus = make_bus(self.cfg.freezer, self.rules, self.clock)
        self.svc = DeviceService(self.cfg, app="freezer")      # real clock for the link
        self.app = FreezerApp(self.rules, self.bus, self.svc, self.clock,
                              storage_of(self.cfg.freezer))
        self.app.register_commands(self.svc)
        self.svc.start()

    def run(self, seconds, step=5.0):
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.app.step()
            self.clock.advance(step)

    def close(self):
        self.svc.close()
        self.bus.close()


def test_alarm_reaches_the_store_server_with_priority_0(stack):
    down, _relay, _store, tmp = stack
    fz = Freezer(tmp, down.url)
    try:
        fz.bus.probe(ROMS["top"]).model.compressor_failed = True
        fz.run(2 * 3600)
        alarms = [e for e in fz.svc.recent_events(200, "freezer.alarm")
                  if e.body["action"] == "raised"]
        assert alarms and alarms[0].prio == 0
        db = tmp / "store.db"
        assert wait_for(lambda: len(store_rows(db, "freezer.alarm")) >= len(alarms), 30)
        prio, ts, body = store_rows(db, "freezer.alarm")[0]
        assert prio == 0 and body["kind"] == "temperature" and body["condition"] == "H"
        assert ts == alarms[0].ts                                # the device's own time
        readings = store_rows(db, "freezer.readings")
        assert readings and {p for p, _, _ in readings} == {3}
    finally:
        fz.close()


def test_warm_up_during_an_outage_is_alarmed_and_delivered_with_true_times(stack):
    down, _relay, _store, tmp = stack
    db = tmp / "store.db"
    fz = Freezer(tmp, down.url)
    try:
        fz.run(600)
        assert wait_for(lambda: store_rows(db, "freezer.readings"), 30)
        down.stop()                                      # the in-store network is down
        fz.bus.probe(ROMS["top"]).model.compressor_failed = True
        fz.run(2 * 3600)
        raised = [e for e in fz.svc.recent_events(200, "freezer.alarm")
                  if e.body["action"] == "raised"]
        assert raised, "the warm-up must be alarmed locally during the outage"
        assert store_rows(db, "freezer.alarm") == []
        down.start()                                     # network back
        assert wait_for(lambda: len(store_rows(db, "freezer.alarm")) >= len(raised), 60)
        got = {(b["alarm_id"], b["action"]): (p, ts) for p, ts, b in store_rows(db,
                                                                               "freezer.alarm")}
        for env in raised:
            assert got[(env.body["alarm_id"], "raised")] == (0, env.ts)
        assert raised[0].ts < format_ts(fz.clock.time())   # true (earlier) time, not arrival
    finally:
        fz.close()


def test_ack_over_mqtt_command_reaches_the_store_with_who_and_note(stack):
    down, _relay, _store, tmp = stack
    db = tmp / "store.db"
    kit = CommandKit(tmp / "pki")
    fz = Freezer(tmp, down.url, command_pub=str(kit.pub_path))
    client = down.client("gw-1", "gateway")          # the gateway relays commands down
    try:
        fz.bus.probe(ROMS["top"]).model.compressor_failed = True
        fz.run(2 * 3600)
        alarm_id = fz.app.alarms()[0].id
        host, port = down.url.rsplit("/", 1)[-1].split(":")
        client.connect(host, int(port))
        client.loop_start()
        topic = "se/v1/s0042/freezer/fz-1/cmd/ack"
        for args in ({"alarm": "nope", "note": "x"},
                     {"alarm": alarm_id, "note": "moved stock to ice2"}):
            client.publish(topic, kit.sign("freezer", "fz-1", "ack", args, by="jd",
                                           role="manager"), qos=1).wait_for_publish(5)
        assert wait_for(lambda: fz.app.engine.get(alarm_id).acked, 20)
        assert fz.app.engine.get(alarm_id).acked_by == "jd"    # the signed identity

        def acked_rows():
            return [b for _p, _t, b in store_rows(db, "freezer.alarm") if b["action"] == "acked"]
        assert wait_for(lambda: acked_rows(), 30)
        assert acked_rows()[0]["ack_note"] == "moved stock to ice2"
        assert wait_for(lambda: len(store_rows(db, "device.command")) == 2, 30)
        results = [b for _p, _t, b in store_rows(db, "device.command")]
        assert [r["ok"] for r in results] == [False, True]
        assert "no open alarm 'nope'" in results[0]["error"]
    finally:
        client.disconnect()
        client.loop_stop()
        fz.close()
