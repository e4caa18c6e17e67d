"""End-to-end seals: a device's envelopes carry an HMAC only it and the store server can make;
a tampering relay between the gateway and the store broker is caught event by event, and
every genuine event still ends up in the store exactly once (real Mosquitto TLS + ACL)."""
from __future__ import annotations

import json
import os
import threading

import pytest

from helpers.events import envelope, stored
from helpers.stack import STORE, device_config, gateway_config, store_config, store_dict, wait_for
from storeedge.exc import SealKeyError
from storeedge.batch import encode_batch, split_batch
from storeedge.brokerproc import subscribe_acked
from storeedge.config import config_from_dict
from storeedge.core_events import SimCounter, SimReading
from storeedge.events import Envelope
from storeedge.ingest import Rejection, Screen
from storeedge.firmware.common.outbox import Identity, Outbox
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import OutboxSection
from storeedge.firmware.gateway.relay import Relay
from storeedge.pki import derive_e2e_key
from storeedge.seal import KeyRing, Verdict, load_key, load_master, seal, split, verify
from storeedge.server.config import StoreServerConfig
from storeedge.server.consumer import StoreServer

MASTER = bytes(range(32))
KEY = derive_e2e_key(MASTER, STORE, "dev-s")


def sealed(env: Envelope, key: bytes = KEY) -> bytes:
    return seal(key, env.to_json())


# ----------------------------------------------------------------------------- the seal


def test_seal_is_the_last_member_and_covers_the_exact_bytes_before_it():
    env = envelope("dev-s", 7, 7)
    raw = sealed(env)
    assert raw.startswith(env.to_json()[:-1]) and raw.endswith(b'"}')
    parsed = Envelope.from_json(raw)
    assert parsed.seal is not None and parsed.to_json() == env.to_json()
    assert split(raw) == (env.to_json(), parsed.seal.encode())
    assert verify(KEY, raw) is Verdict.OK


def _tamper_body(raw: bytes) -> bytes:
    return raw.replace(b'"n":7', b'"n":8')


def _reorder_body(raw: bytes) -> bytes:
    return raw.replace(b'"body":{"n":7,"pad":""}', b'"body":{"pad":"","n":7}')


def _seal_first(raw: bytes) -> bytes:
    body, mac = split(raw)
    return b'{"seal":"' + mac + b'",' + body[1:]


@pytest.mark.parametrize("change", [_tamper_body, _reorder_body, _seal_first,
                                    lambda raw: raw.replace(b'"seq":7', b'"seq":8')])
def test_any_change_to_the_sealed_bytes_is_a_bad_seal(change):
    raw = change(sealed(envelope("dev-s", 7, 7)))
    assert raw != sealed(envelope("dev-s", 7, 7))
    assert verify(KEY, raw) is Verdict.BAD


def test_another_devices_key_does_not_verify():
    raw = sealed(envelope("dev-s", 7, 7), derive_e2e_key(MASTER, STORE, "dev-other"))
    assert KeyRing(MASTER).verify(STORE, "dev-s", raw) is Verdict.BAD
    assert KeyRing(MASTER).verify(STORE, "dev-s", sealed(envelope("dev-s", 7, 7))) is Verdict.OK


def test_screen_with_a_keyring_refuses_unsealed_and_bad_seals_with_counted_reasons():
    screen = Screen(keyring=KeyRing(MASTER))
    env = envelope("dev-s", 7, 7)
    assert isinstance(screen.check(env.topic, sealed(env)), Envelope)
    for raw, reason in ((env.to_json(), "unsealed"), (_tamper_body(sealed(env)), "bad_seal"),
                        (_seal_first(sealed(env)), "bad_seal")):
        got = screen.check(env.topic, raw)
        assert isinstance(got, Rejection) and got.reason == reason, got
        assert (got.dev, got.seq) == ("dev-s", 7)
    assert screen.counts == {"unsealed": 1, "bad_seal": 2}
    insecure = Screen(keyring=KeyRing(MASTER), allow_unsealed=True)
    assert isinstance(insecure.check(env.topic, env.to_json()), Envelope)
    assert insecure.check(env.topic, _tamper_body(sealed(env))).reason == "bad_seal"


def test_outbox_seals_every_stored_envelope_including_summaries(tmp_path):
    cfg = OutboxSection(path=str(tmp_path / "o.db"), max_bytes=64 * 1024,
                        max_event_bytes=4096, reserve_fraction=0.5)
    box = Outbox(cfg, Identity("dev-s", "sim", STORE), seal_key=KEY)
    try:
        box.append(SimCounter(n=1))
        for i in range(400):                       # telemetry pressure: summaries are made
            try:
                box.append(SimReading(value=float(i)))
            except Exception:
                break
        rows = box.pending_after(0, 10_000)
        assert any(r.type == "telemetry.coalesced" for r in rows), "pressure made a summary"
        assert all(verify(KEY, r.payload) is Verdict.OK for r in rows)
        assert box.recent(1)[0].seal is not None
    finally:
        box.close()


def test_key_files_must_be_private_and_the_right_size(tmp_path):
    path = tmp_path / "e2e.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    assert load_key(str(path)) == KEY
    path.chmod(0o644)
    with pytest.raises(SealKeyError, match="chmod 600"):
        load_key(str(path))
    path.chmod(0o600)
    path.write_bytes(KEY[:31])
    with pytest.raises(SealKeyError, match="32 bytes"):
        load_key(str(path))
    with pytest.raises(SealKeyError, match="cannot read"):
        load_master(str(tmp_path / "missing"))


# ----------------------------------------------------------------------------- end to end


class TamperingRelay:
    """A compromised hop between the gateway's upstream broker (``mid``) and the store broker:
    forwards everything both ways, but alters, reorders and invents events of ``dev``."""

    def __init__(self, mid, up, dev: str):
        self.dev, self.done, self.lock = dev, set(), threading.Lock()
        self.plan = {3: _alter, 5: _reorder, 6: _seal_moved, 7: self._replay_body}
        self.bodies: dict[int, dict] = {}
        self.mid = mid.client("store-1", "store_server", client_id="tamper-mid")
        self.up = up.client("gw-1", "gateway", client_id="tamper-up")
        self.mid.on_message = self._upward
        self.up.on_message = self._downward
        for client, broker in ((self.mid, mid), (self.up, up)):
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
        subscribe_acked(self.mid, "se/v1/+/+/+/batch")
        subscribe_acked(self.mid, "se/v1/+/+/+/evt/#")
        subscribe_acked(self.up, "se/v1/+/+/+/ack")
        subscribe_acked(self.up, "se/v1/+/+/+/cmd/#")

    def _upward(self, _client, _userdata, msg) -> None:
        if msg.topic.endswith("/batch"):
            frame = encode_batch([self._element(e) for e in split_batch(msg.payload)])
            self.up.publish(msg.topic, frame, qos=1)
        else:
            self.up.publish(msg.topic, self._element(msg.payload), qos=1)

    def _downward(self, _client, _userdata, msg) -> None:
        self.mid.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)

    def _element(self, raw: bytes) -> bytes:
        doc = json.loads(raw)
        seq = doc["seq"]
        if doc["dev"] != self.dev:
            return raw
        with self.lock:
            self.bodies.setdefault(seq, doc["body"])
            change = self.plan.get(seq)
            if change is None or seq in self.done:
                return raw                       # re-sends go through untouched
            self.done.add(seq)
        return change(raw)

    def _replay_body(self, raw: bytes) -> bytes:
        """seq 7 carrying seq 4's genuine body (and seq 7's genuine seal)."""
        body = json.dumps(self.bodies[4], separators=(",", ":")).encode()
        start, end = raw.index(b'"body":') + 7, raw.index(b',"seal":')
        return raw[:start] + body + raw[end:]

    def invent(self, topic: str, envelopes: list[bytes]) -> None:
        self.up.publish(topic, encode_batch(envelopes), qos=1).wait_for_publish(5)

    def close(self) -> None:
        for client in (self.mid, self.up):
            client.disconnect()
            client.loop_stop()


def _alter(raw: bytes) -> bytes:
    doc = json.loads(raw)
    n = doc["body"]["n"]
    return raw.replace(f'"n":{n},'.encode(), f'"n":{n + 1000},'.encode(), 1)


def _reorder(raw: bytes) -> bytes:
    body, mac = split(raw)
    doc = json.loads(body)
    swapped = dict(reversed(list(doc.items())))
    return json.dumps(swapped, separators=(",", ":")).encode()[:-1] + b',"seal":"' + mac + b'"}'


def _seal_moved(raw: bytes) -> bytes:
    return _seal_first(raw)


def test_a_tampering_relay_is_caught_and_every_genuine_event_is_stored_once(broker_factory,
                                                                            tmp_path):
    down = broker_factory("down", role="in_store")
    mid = broker_factory("mid", role="store")
    up = broker_factory("up", role="store")
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, mid.url, tmp_path))
    server = StoreServer(store_config(up.url, db))
    assert server.screen.keyring is not None, "the test stack checks seals"
    tamper = TamperingRelay(mid, up, "dev-t")
    svc = DeviceService(device_config("dev-t", down.url, tmp_path))
    relay.start()
    server.start()
    try:
        svc.start()                                           # seq 1: device.started
        last = [svc.emit(SimCounter(n=i)).seq for i in range(2, 21)][-1]
        assert wait_for(lambda: stored(db, "dev-t") == list(range(1, last + 1)), 60), \
            stored(db, "dev-t")
        key = derive_e2e_key(up.pki.e2e_master.read_bytes(), STORE, "dev-t")
        fake = [envelope("dev-t", last + 1, 99).to_json(),                       # unsealed
                seal(os.urandom(32), envelope("dev-t", last + 2, 98).to_json())]  # wrong key
        tamper.invent(envelope("dev-t", 1, 1).topic.rsplit("/evt/", 1)[0] + "/batch", fake)
        assert wait_for(lambda: _rejects(server).get("unsealed") == 1, 10)
        more = [svc.emit(SimCounter(n=i)).seq for i in (21, 22)]
        assert more == [last + 1, last + 2]
        assert wait_for(lambda: stored(db, "dev-t") == list(range(1, last + 3)), 30)
        bodies = {s: b for s, _t, b in server.db.events_of("dev-t")}
        assert [bodies[s]["n"] for s in range(2, last + 3)] == list(range(2, 23)), \
            "every stored body is the device's own"
        assert _rejects(server) == {"bad_seal": 5, "unsealed": 1}
        seen = {(i.seq, i.reason) for i in server.db.integrity()}
        assert seen == {(3, "bad_seal"), (5, "bad_seal"), (6, "bad_seal"), (7, "bad_seal"),
                        (last + 1, "unsealed"), (last + 2, "bad_seal")}
        dups = server.db.query("SELECT duplicates, conflicts FROM devices WHERE dev='dev-t'")
        assert dups[0][1] == 0, "no conflict: the tampered copies were never stored"
    finally:
        svc.close()
        tamper.close()
        relay.close()
        server.close()


def _rejects(server) -> dict:
    return dict(server.db.query("SELECT reason, count FROM rejects"))


def test_store_server_in_insecure_mode_stores_unsealed_but_still_checks_seals(tmp_path):
    master = tmp_path / "master.key"
    master.write_bytes(MASTER)
    master.chmod(0o600)
    cfg = config_from_dict({**store_dict("mqtt://127.0.0.1:9", f"sqlite:///{tmp_path}/s.db"),
                            "security": {"insecure": True, "e2e_master": str(master)}},
                           StoreServerConfig)
    server = StoreServer(cfg)                 # never started: the writer alone is exercised
    try:
        env = envelope("dev-s", 1, 1)
        for raw in (env.to_json(), _tamper_body(sealed(envelope("dev-s", 7, 7))),
                    sealed(envelope("dev-s", 2, 2))):
            server.committer.submit(server.screen.check(env.topic, raw)).wait(10)
        assert [s for s, _t, _b in server.db.events_of("dev-s")] == [1, 2]
        assert [(i.seq, i.reason) for i in server.db.integrity()] == [(7, "bad_seal")]
    finally:
        server.committer.close()
        server.db.close()


def _store_cli(tmp_path, security: dict, *extra: str):
    import subprocess
    import sys

    from helpers.stack import write_yaml
    doc = store_dict("mqtts://127.0.0.1:9", f"sqlite:///{tmp_path}/s.db")
    doc["link"].update({k: str(tmp_path / k) for k in ("tls_ca", "tls_cert", "tls_key")})
    cfg = write_yaml(tmp_path / "st.yaml", {**doc, "security": security})
    return subprocess.run([sys.executable, "-m", "storeedge", "store-server", "--config",
                           str(cfg), *extra], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_store_server_without_a_master_is_refused_with_the_key_named(tmp_path):
    """Secure by default: no e2e_master and no explicit insecure flag is a config error."""
    out = _store_cli(tmp_path, {}, "--validate-config")
    assert out.returncode == 1
    assert "security.e2e_master" in out.stderr and "Traceback" not in out.stderr


def test_store_server_with_an_unreadable_master_says_so_in_one_line(tmp_path):
    master = tmp_path / "master.key"
    master.write_bytes(MASTER)
    master.chmod(0o644)
    out = _store_cli(tmp_path, {"e2e_master": str(master)})
    assert out.returncode == 1, out.stderr
    assert "chmod 600" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_counts_lists_integrity_rows(tmp_path, capsys):
    from storeedge.server.db import Integrity, open_store_db
    from storeedge.server.main import _print_counts

    db = open_store_db(f"sqlite:///{tmp_path}/s.db")
    try:
        with db.lock:
            db.record_integrity(Integrity("door-1", 42, "bad_seal", "seal does not match",
                                          "se/v1/s0042/dock_door/door-1/batch", 1, 1.0, 1.0))
            db.conn.commit()
        _print_counts(db)
    finally:
        db.close()
    assert "integrity door-1 seq 42 bad_seal x1: seal does not match" in capsys.readouterr().out
