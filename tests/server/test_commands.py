"""Signed commands: the format, every refusal reason, the store server's sender (durable
counters in SQLite and PostgreSQL) and the device's gate against real Mosquitto (TLS + ACL
brokers from the session's store PKI; the command key is the PKI's ``command.key``).

The "attacker" publishing forged commands uses the gateway identity, the one the in-store
broker's ACL lets write device commands: what a compromised gateway could do.  The device
must refuse on its own."""
from __future__ import annotations

import base64
import json
import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers.cmdkit import CommandKit, connect_as, sign_unchecked, start_plain_broker
from helpers.stack import (GATEWAY_ID, device_config, device_security, link_for,
                           wait_for)
from storeedge.brokerproc import subscribe_acked
from storeedge.exc import CommandRefused, SigningKeyError
from storeedge.link import MqttLink
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import LinkSection
from storeedge.server.commands import CommandSender
from storeedge.server.db import open_store_db
from storeedge.signing import (COMMAND_ROLES, CommandSigner, CommandVerifier, Role,
                               SignedCommand, Target, load_signing_key)

STORE = "s0042"
FZ = Target(STORE, "freezer", "fz-1")


@pytest.fixture
def kit(store_pki):
    return CommandKit.from_pki(store_pki)


def verifier(kit) -> CommandVerifier:
    return CommandVerifier(kit.signer.public_key, FZ)


def refusal(fn) -> str:
    with pytest.raises(CommandRefused) as info:
        fn()
    return info.value.reason


# ----------------------------------------------------------------------------- format


def test_a_signed_command_verifies_with_the_signed_identity(kit):
    payload = kit.sign("freezer", "fz-1", "ack", {"alarm": "a1", "note": "moved"},
                       by="alice", role="associate", ctr=7)
    cmd = verifier(kit).verify("ack", payload, now=time.time(), last_ctr=6)
    assert (cmd.name, cmd.args, cmd.by, cmd.role, cmd.ctr) == (
        "ack", {"alarm": "a1", "note": "moved"}, "alice", Role.ASSOCIATE, 7)


def test_every_refusal_reason(kit):
    v, now = verifier(kit), time.time()
    other = CommandSigner(Ed25519PrivateKey.generate())
    forged = other.sign(SignedCommand("f-1", FZ, "ack", {}, 5, int(now + 60), "mallory",
                                      Role.MANAGER))
    assert refusal(lambda: v.verify("ack", forged, now=now, last_ctr=0)) == "bad_signature"
    good = kit.sign("freezer", "fz-1", "ack", {"alarm": "a1"}, role="associate", ctr=5)
    doc = json.loads(good)
    body = json.loads(base64.urlsafe_b64decode(doc["cmd"] + "=="))
    body["by"] = "store-manager"                       # altered after signing
    doc["cmd"] = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    assert refusal(lambda: v.verify("ack", json.dumps(doc).encode(), now=now,
                                    last_ctr=0)) == "bad_signature"
    assert refusal(lambda: v.verify("ack", good, now=now, last_ctr=5)) == "replayed"
    assert refusal(lambda: v.verify("ack", good, now=now + 10**6, last_ctr=0)) == "expired"
    for_other = kit.sign("freezer", "fz-2", "ack", {}, role="associate")
    assert refusal(lambda: v.verify("ack", for_other, now=now, last_ctr=0)) == "wrong_device"
    assert refusal(lambda: v.verify("reset_lockout", good, now=now, last_ctr=0)) == "malformed"
    unsigned = json.dumps({"args": {}, "by": "store-manager", "id": "x"}).encode()
    assert refusal(lambda: v.verify("ack", unsigned, now=now, last_ctr=0)) == "unsigned"
    for junk in (b"", b"nan", b"[" * 5000, b'{"v":1,"cmd":"!!","sig":"AA"}',
                 b'{"v":1,"cmd":"e30","sig":"' + b"A" * 86 + b'","x":1}', b"\xff\xfe"):
        assert refusal(lambda: v.verify("ack", junk, now=now, last_ctr=0)) == "malformed"


def test_role_table_refuses_an_associate_reset_and_unknown_commands(kit):
    target = Target(STORE, "dock_door", "door-1")
    v = CommandVerifier(kit.signer.public_key, target)
    with pytest.raises(ValueError):       # the server side will not even sign it
        kit.sign("dock_door", "door-1", "reset_lockout", {}, role="associate")
    with pytest.raises(ValueError, match="by must match"):     # nor a bad field
        kit.sign("dock_door", "door-1", "door_status", {}, by="<script>")
    # a key holder who builds the body by hand is still refused by the device
    raw_sign = sign_unchecked(kit, target, "reset_lockout", "associate")
    assert refusal(lambda: v.verify("reset_lockout", raw_sign, now=time.time(),
                                    last_ctr=0)) == "role_not_allowed"
    unknown = sign_unchecked(kit, target, "test_relay", "manager")
    assert refusal(lambda: v.verify("test_relay", unknown, now=time.time(),
                                    last_ctr=0)) == "unknown_command"
    assert COMMAND_ROLES["reset_lockout"] == {Role.MANAGER}
    assert Role.ASSOCIATE in COMMAND_ROLES["ack"] and "test_relay" not in COMMAND_ROLES


def test_signing_key_must_be_private(tmp_path):
    kit = CommandKit(tmp_path / "pki", STORE)
    os.chmod(kit.key_path, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_signing_key(kit.key_path)


# ----------------------------------------------------------------------------- sender


class Catcher:
    """Records commands published on the store broker."""

    def __init__(self, broker):
        self.msgs: list[mqtt.MQTTMessage] = []
        self.c = connect_as(broker, GATEWAY_ID, "gateway")      # reads store-side commands
        self.c.on_message = lambda _c, _u, m: self.msgs.append(m)
        subscribe_acked(self.c, "se/v1/+/+/+/cmd/#")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _server_link(broker) -> MqttLink:
    settings = link_for(broker.url, "store-1", "store_server")
    link = MqttLink("se-store-test", LinkSection(**settings))
    link.start()
    assert link.wait_connected(10)
    return link


def _sender_counters(kit, broker, db_url: str) -> list[int]:
    catcher, link = Catcher(broker), _server_link(broker)
    ctrs = []
    try:
        for _round in range(2):                     # a restarted sender on the same DB
            db = open_store_db(db_url)
            sender = CommandSender(link, kit.signer, db)
            for _ in range(3):
                sender.send(STORE, "freezer", "fz-1", "ack", {"alarm": "a"}, "bob", "associate")
                sender.last_info.wait_for_publish(5)
            assert [s.by for s in sender.sent("fz-1")][:1] == ["bob"]
            db.close()
        assert wait_for(lambda: len(catcher.msgs) == 6, 10)
        for m in catcher.msgs:
            assert m.topic == f"se/v1/{STORE}/freezer/fz-1/cmd/ack" and not m.retain
            ctrs.append(verifier(kit).verify("ack", m.payload, now=time.time(), last_ctr=0).ctr)
    finally:
        link.stop()
        catcher.close()
    return ctrs


def test_sender_counters_are_durable_in_sqlite(kit, broker, tmp_path):
    ctrs = _sender_counters(kit, broker, f"sqlite:///{tmp_path / 'store.db'}")
    assert ctrs == sorted(ctrs) and len(set(ctrs)) == 6


def test_sender_counters_are_durable_in_postgres(kit, broker, postgres):
    import psycopg
    name = f"cmds_{os.getpid()}_{int(time.time() * 1000) % 10**6}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    ctrs = _sender_counters(kit, broker, postgres.dsn.rsplit("/", 1)[0] + f"/{name}")
    assert ctrs == sorted(ctrs) and len(set(ctrs)) == 6


def test_sender_refuses_a_role_that_may_not_send(kit, broker, tmp_path):
    db = open_store_db(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        sender = CommandSender(None, kit.signer, db)
        with pytest.raises(ValueError, match="may not send"):
            sender.send(STORE, "dock_door", "door-1", "reset_lockout", {}, "ann", "associate")
        with pytest.raises(ValueError, match="unknown command"):
            sender.send(STORE, "dock_door", "door-1", "test_relay", {}, "ann", "manager")
    finally:
        db.close()


# ----------------------------------------------------------------------------- device gate


def _service(kit, broker, tmp_path, *, dev="fz-1", **outbox) -> DeviceService:
    """A freezer-kind DeviceService; its bundle's ``command.pub`` is ``kit``'s (an insecure
    broker gives ``security.insecure``)."""
    cfg = device_config(dev, broker.url, tmp_path, kind="freezer", **outbox)
    if not broker.insecure:
        assert cfg.security.command_pub and not cfg.security.insecure
        assert open(cfg.security.command_pub, "rb").read() == open(kit.pub_path, "rb").read()
    return DeviceService(cfg)


class DevicePeer:
    """Publishes to a device's command topics and collects its events."""

    def __init__(self, broker, dev="fz-1"):
        self.base = f"se/v1/{STORE}/freezer/{dev}"
        self.events: list[dict] = []
        self.c = connect_as(broker, GATEWAY_ID, "gateway")
        self.c.on_message = lambda _c, _u, m: self.events.append(json.loads(m.payload))
        subscribe_acked(self.c, f"{self.base}/evt/#")

    def send(self, name: str, payload: bytes, wait: bool = True) -> None:
        info = self.c.publish(f"{self.base}/cmd/{name}", payload, qos=1)
        if wait:
            info.wait_for_publish(5)

    def of(self, etype: str) -> list[dict]:
        return [e["body"] for e in list(self.events) if e["type"] == etype]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_device_acts_once_with_the_signed_identity_and_keeps_the_counter(kit, broker, tmp_path):
    runs = []
    svc = _service(kit, broker, tmp_path)
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {"ok": True})
    svc.start()
    peer = DevicePeer(broker)
    genuine = kit.sign("freezer", "fz-1", "ack", {"alarm": "a1"}, by="carol", role="associate")
    try:
        assert svc.link.wait_connected(10)
        peer.send("ack", json.dumps({"args": {"alarm": "a1"}, "by": "store-manager"}).encode())
        peer.send("ack", genuine)
        peer.send("ack", genuine)                                  # replayed
        assert wait_for(lambda: peer.of("device.command"), 10)
        assert wait_for(lambda: sum(svc.gate.refusals.total.values()) == 2, 10)
        assert [(c.by, c.role) for c in runs] == [("carol", "associate")]
        assert peer.of("device.command")[0]["by"] == "carol"
        assert dict(svc.gate.refusals.total) == {"unsigned": 1, "replayed": 1}
    finally:
        svc.close()
    svc = _service(kit, broker, tmp_path)                          # restart: counter is durable
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {"ok": True})
    svc.start()
    try:
        assert svc.link.wait_connected(10)
        peer.send("ack", genuine)
        assert wait_for(lambda: svc.gate.refusals.total["replayed"] == 1, 10)
        assert len(runs) == 1
        assert wait_for(lambda: peer.of("device.commands_refused"), 10)
    finally:
        svc.close()
        peer.close()


def test_insecure_mode_accepts_unsigned_but_marks_by_unverified(kit, tmp_path):
    broker = start_plain_broker(tmp_path / "plain")          # explicit insecure everywhere
    runs = []
    svc = _service(kit, broker, tmp_path)
    assert svc.gate.insecure
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {})
    svc.start()
    peer = DevicePeer(broker)
    try:
        assert svc.link.wait_connected(10)
        peer.send("ack", json.dumps({"args": {"n": 1}, "by": "store-manager", "id": "u1"}).encode())
        assert wait_for(lambda: runs, 10)
        assert runs[0].by == "unverified:store-manager" and runs[0].role == ""
    finally:
        svc.close()
        peer.close()
        broker.stop()


def test_a_flood_of_unknown_commands_neither_fills_the_outbox_nor_kills_the_worker(
        kit, broker, tmp_path, caplog):
    """3,000 unknown (and junk) commands into a 1 MiB outbox: refusals are counted and
    summarised, nothing is emitted per refusal, and a later genuine command still runs."""
    runs = []
    svc = _service(kit, broker, tmp_path, max_bytes=2**20, max_event_bytes=64 * 1024)
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {})
    svc.start()
    peer = DevicePeer(broker)
    try:
        assert svc.link.wait_connected(10)
        before = svc.outbox.stats()
        pad = "x" * 200
        for i in range(3000):
            peer.send(f"bogus{i % 50}", json.dumps({"by": "x", "pad": pad}).encode(),
                      wait=(i % 500 == 499))
        assert wait_for(lambda: sum(svc.gate.refusals.total.values()) >= 3000, 60)
        assert svc._threads[1].is_alive()
        peer.send("ack", kit.sign("freezer", "fz-1", "ack", {}, by="dan", role="associate"))
        assert wait_for(lambda: runs, 10), "the worker stopped taking commands"
        assert runs[0].by == "dan"
        after = svc.outbox.stats()
        assert after.last_seq - before.last_seq <= 3, "refusals were emitted one event each"
        summaries = svc.recent_events(10, "device.commands_refused")
        assert len(summaries) == 1
        assert sum(summaries[0].body["reasons"].values()) >= 1
        logged = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(logged) <= 4, "a flood must not flood the log"
    finally:
        svc.close()
        peer.close()
    assert svc.command_errors == 0


# ----------------------------------------------------------------------------- gateway


def test_gateway_relays_store_commands_down_never_retained_and_not_replay(kit, tmp_path):
    """store broker -> gateway -> in-store broker: a signed command arrives (not retained);
    a retained one, another store's and the gateway's own ``replay`` are not relayed.

    Insecure brokers on purpose: this is the gateway's own filter (with ACLs the broker
    already refuses some of these publishes)."""
    from helpers.stack import gateway_config
    from storeedge.firmware.gateway.relay import Relay

    down, up = start_plain_broker(tmp_path / "down"), start_plain_broker(tmp_path / "up")
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    below = Catcher(down)
    store_side = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        relay.start()
        assert wait_for(lambda: relay.up.connected.is_set() and relay.down.connected.is_set(),
                        10)
        store_side.connect("127.0.0.1", up.port)
        store_side.loop_start()
        genuine = kit.sign("freezer", "fz-1", "ack", {"alarm": "a"}, role="associate")
        base = f"se/v1/{STORE}/freezer/fz-1/cmd"
        for topic, payload, retain in ((f"{base}/ack", b"old", True),
                                       ("se/v1/s9999/freezer/fz-1/cmd/ack", genuine, False),
                                       (f"{base}/replay", b'{"args":{"from":1}}', False),
                                       (f"{base}/ack", genuine, False)):
            store_side.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
        assert wait_for(lambda: relay.commands_relayed == 1 and relay.commands_dropped == 2, 10)
        assert wait_for(lambda: len(below.msgs) == 1, 10)
        m = below.msgs[0]
        assert (m.topic, m.payload, m.retain) == (f"{base}/ack", genuine, False)
        time.sleep(0.3)                      # nothing else trickles down
        assert [x.topic for x in below.msgs] == [f"{base}/ack"]
    finally:
        store_side.disconnect()
        store_side.loop_stop()
        below.close()
        relay.close()
        down.stop()
        up.stop()


# ----------------------------------------------------------------------------- freezer ack


def test_forged_freezer_ack_is_refused_and_haccp_records_carry_the_signed_name(kit, broker,
                                                                               tmp_path):
    """A forged ``cmd/ack`` (unsigned, claiming a manager) silences nothing and writes no
    corrective action; the genuine signed ack records the signer as ``by``/initials."""
    from helpers.freezer_rig import ROMS, freezer_config_dict

    from storeedge.drivers.clock import SimulatedClock
    from storeedge.config import config_from_dict
    from storeedge.firmware.freezer.app import FreezerApp
    from storeedge.firmware.freezer.config import FreezerConfig, build_rules, storage_of
    from storeedge.firmware.freezer.wiring import make_bus

    data = freezer_config_dict(tmp_path)
    data["link"] = link_for(broker.url, "fz-1", "freezer")
    data["security"] = device_security(broker.url, "fz-1")
    cfg = config_from_dict(data, FreezerConfig)
    rules, clock = build_rules(cfg.freezer), SimulatedClock(start=1_795_000_000.0 + 5 * 3600)
    bus = make_bus(cfg.freezer, rules, clock)
    svc = DeviceService(cfg, app="freezer")
    app = FreezerApp(rules, bus, svc, clock, storage_of(cfg.freezer))
    app.register_commands(svc)
    svc.start()
    peer = DevicePeer(broker)
    try:
        assert svc.link.wait_connected(10)
        bus.probe(ROMS["top"]).model.compressor_failed = True
        end = clock.monotonic() + 3 * 3600                 # across the 18:00 HACCP check
        while clock.monotonic() < end:
            app.step()
            clock.advance(10.0)
        alarm = app.alarms()[0]
        failed = [r for r in app.haccp_records() if r.needs_action]
        assert failed, "the scenario must produce a failed HACCP check"
        peer.send("ack", json.dumps({"args": {"alarm": alarm.id, "note": "all fine"},
                                     "by": "store-manager", "id": "f"}).encode())
        assert wait_for(lambda: svc.gate.refusals.total["unsigned"] == 1, 10)
        assert not app.engine.get(alarm.id).acked
        assert all(r.action is None for r in app.haccp_records() if r.result != "pass")
        peer.send("ack", kit.sign("freezer", "fz-1", "ack",
                                  {"alarm": alarm.id, "note": "moved stock to ice2"},
                                  by="CR", role="associate"))
        assert wait_for(lambda: app.engine.get(alarm.id).acked, 10)
        assert app.engine.get(alarm.id).acked_by == "CR"
        acted = [r for r in app.haccp_records() if r.action is not None]
        assert acted and {r.initials for r in acted} == {"CR"}
    finally:
        svc.close()
        bus.close()
        peer.close()


def test_store_server_to_device_through_the_gateway(kit, broker_factory, tmp_path):
    """The store page's path: CommandSender on the store broker -> gateway -> device, each
    with its own identity on TLS + ACL brokers."""
    from helpers.stack import gateway_config
    from storeedge.firmware.gateway.relay import Relay

    down, up = broker_factory("down", role="in_store"), broker_factory("up", role="store")
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    svc = _service(kit, down, tmp_path)
    runs = []
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {"ok": True})
    link = _server_link(up)
    db = open_store_db(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        relay.start()
        svc.start()
        assert svc.link.wait_connected(10) and relay.up.wait_connected(10)
        assert relay.down.wait_connected(10)
        sender = CommandSender(link, kit.signer, db)
        first = sender.send(STORE, "freezer", "fz-1", "ack", {"alarm": "a1"}, "Zoë", "associate")
        assert wait_for(lambda: len(runs) == 1, 15)
        second = sender.send(STORE, "freezer", "fz-1", "ack", {"alarm": "a2"}, "bob", "manager")
        assert wait_for(lambda: len(runs) == 2, 15)
        assert [(c.id, c.by, c.role, c.args) for c in runs] == [
            (first, "Zoë", "associate", {"alarm": "a1"}), (second, "bob", "manager",
                                                           {"alarm": "a2"})]
        assert svc.gate.counter.value == sender.sent("fz-1")[0].ctr
    finally:
        link.stop()
        svc.close()
        relay.close()
        db.close()


def test_store_server_command_cli(kit, broker, tmp_path, capsys, monkeypatch):
    import logging

    from helpers.stack import store_dict, write_yaml

    # a handler an earlier test left on the root logger (bound to its own, now closed,
    # captured stderr) must not write into this test's stderr
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    from storeedge.cli import main as storeedge

    def store_main(argv):
        return storeedge(["store-server", *argv])

    doc = store_dict(broker.url, f"sqlite:///{tmp_path / 'store.db'}")
    assert doc["security"]["command_key"] == str(kit.key_path)
    cfg = write_yaml(tmp_path / "st.yaml", doc)
    catcher = Catcher(broker)
    try:
        rc = store_main(["command", "door-1", "reset_lockout", "--args", '{"note": "ok"}',
                         "--by", "maria", "--role", "manager", "--config", str(cfg),
                         "--kind", "dock_door", "--store", STORE])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert wait_for(lambda: len(catcher.msgs) == 1, 10)
        cmd = CommandVerifier(kit.signer.public_key, Target(STORE, "dock_door", "door-1")).verify(
            "reset_lockout", catcher.msgs[0].payload, now=time.time(), last_ctr=0)
        assert (cmd.id, cmd.by, cmd.role, cmd.args) == (out.strip(), "maria", Role.MANAGER,
                                                        {"note": "ok"})
        rc = store_main(["command", "door-1", "reset_lockout", "--by", "al", "--role",
                         "associate", "--config", str(cfg), "--kind", "dock_door",
                         "--store", STORE])
        err = capsys.readouterr().err
        assert rc == 1 and "associate may not send 'reset_lockout'" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        rc = store_main(["command", "nodev", "door_status", "--by", "al", "--role",
                         "associate", "--config", str(cfg)])
        assert rc == 1 and "not in the store database" in capsys.readouterr().err
    finally:
        catcher.close()


def test_a_missing_command_key_refuses_commands_but_the_device_runs(kit, tmp_path):
    from storeedge.firmware.common.cmdgate import CommandGate

    cfg = device_config("fz-9", "mqtt://127.0.0.1:1", tmp_path, kind="freezer")
    cfg.security.insecure, cfg.security.command_pub = False, str(tmp_path / "missing.pub")
    gate = CommandGate(cfg, time.time)
    payload = kit.sign("freezer", "fz-9", "ack", {}, role="associate")
    with pytest.raises(CommandRefused) as info:
        gate.admit("ack", payload, known=True)
    assert info.value.reason == "unsigned"


def test_a_lost_counter_file_never_reopens_old_commands(kit, broker, tmp_path):
    """The counter file deleted (outbox kept): old captured commands stay refused."""
    from storeedge.firmware.common.cmdgate import counter_path

    runs = []
    old = kit.sign("freezer", "fz-1", "ack", {"alarm": "a0"}, by="carol", role="associate",
                   ctr=int(time.time() * 1000) - 60_000)           # sent a minute ago
    svc = _service(kit, broker, tmp_path)
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {})
    svc.start()
    svc.close()                                  # the outbox now holds device.started
    assert not os.path.exists(counter_path(svc.cfg))   # as if lost (never written here)
    svc = _service(kit, broker, tmp_path)
    svc.on_command("ack", lambda cmd: runs.append(cmd) or {})
    try:
        with pytest.raises(CommandRefused) as info:
            svc.gate.admit("ack", old, known=True)
        assert info.value.reason == "replayed" and runs == []
        fresh = kit.sign("freezer", "fz-1", "ack", {"alarm": "a1"}, by="carol",
                         role="associate", ctr=int(time.time() * 1000) + 1000)
        assert svc.gate.admit("ack", fresh, known=True).by == "carol"
    finally:
        svc.outbox.close()
