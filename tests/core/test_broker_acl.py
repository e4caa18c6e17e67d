"""Real Mosquitto 2.0 with the generated TLS + ACL configs (storeedge.brokerconf), attacked
with raw paho clients: every identity can do only what its role needs.

Mosquitto 2.0 grants any SUBSCRIBE and applies the read ACL per message (retained ones
too), so "cannot read" is shown by what arrives: a sentinel the reader may see is published
after the forbidden messages by the same publisher; once it is in, nothing else may be.
"""
from __future__ import annotations

import json

from helpers.mqtt_peers import Peer
from storeedge.pki import StorePKI

S = "se/v1/s0042"
OK, DENIED = "Success", "Not authorized"


def test_device_publishes_only_its_own_events_and_state(in_store, peers):
    gw = peers(in_store, "gw-1", "gateway")
    dev = peers(in_store, "acl-a")
    assert gw.connect() == OK and dev.connect() == OK
    gw.subscribe("se/v1/+/+/+/evt/#")
    own = f"{S}/sim/acl-a/evt/sim.counter"
    assert dev.publish(own, {"n": 1}) == OK
    assert dev.publish(f"{S}/sim/acl-a/state", {"state": "online"}, retain=True) == OK
    forged = [f"{S}/sim/acl-b/evt/sim.counter",           # another device's events
              f"{S}/freezer/acl-a/evt/sim.counter",       # itself under another kind
              f"se/v1/s9999/sim/acl-a/evt/sim.counter",   # itself in another store
              f"{S}/gateway/gw-1/evt/x"]
    for topic in forged:
        assert dev.publish(topic, {"n": 666}) == DENIED, topic
    assert dev.publish(f"{S}/sim/acl-b/state", {"state": "offline"}, retain=True) == DENIED
    sentinel = f"{S}/sim/acl-a/evt/sentinel"
    assert dev.publish(sentinel, {"n": 2}) == OK
    assert gw.wait_for(sentinel)
    assert gw.topics() == [own, sentinel]


def test_device_cannot_write_its_own_ack_or_any_command(in_store, peers):
    dev = peers(in_store, "acl-a")
    assert dev.connect() == OK
    for topic in (f"{S}/sim/acl-a/ack", f"{S}/sim/acl-b/ack", f"{S}/sim/acl-a/cmd/replay",
                  f"{S}/sim/acl-b/cmd/reset_lockout", f"{S}/dock_door/door-1/cmd/test_relay"):
        assert dev.publish(topic, {"seq": 9}, retain=topic.endswith("ack")) == DENIED, topic


def test_device_reads_only_its_own_ack_and_commands_even_subscribed_to_everything(
        in_store, peers):
    gw = peers(in_store, "gw-1", "gateway")
    a, b = peers(in_store, "acl-a"), peers(in_store, "acl-b")
    assert gw.connect() == OK and a.connect() == OK and b.connect() == OK
    assert gw.publish(f"{S}/sim/acl-a/ack", {"seq": 4}, retain=True) == OK
    for peer in (a, b):
        peer.subscribe("#")                                  # granted, but filtered
        peer.subscribe(f"{S}/sim/acl-a/cmd/#")
    assert gw.publish(f"{S}/sim/acl-a/cmd/ping", {"id": "c1"}) == OK
    assert gw.publish(f"{S}/sim/acl-b/ack", {"seq": 1}) == OK          # b's sentinel
    assert gw.publish(f"{S}/sim/acl-a/ack", {"seq": 5}) == OK
    assert b.wait_for(f"{S}/sim/acl-b/ack") and a.wait_for(f"{S}/sim/acl-a/cmd/ping")
    assert b.topics() == [f"{S}/sim/acl-b/ack"]
    assert a.wait_for(f"{S}/sim/acl-a/ack", {"seq": 4})          # retained, on subscribe
    assert a.wait_for(f"{S}/sim/acl-a/ack", {"seq": 5})          # live
    assert all(t.startswith(f"{S}/sim/acl-a/") for t in a.topics())


def test_gateway_relays_acks_and_commands_but_cannot_forge_device_events(in_store, peers):
    gw = peers(in_store, "gw-1", "gateway")
    assert gw.connect() == OK
    assert gw.publish(f"{S}/sim/acl-a/ack", {"seq": 1}) == OK
    assert gw.publish(f"{S}/sim/acl-a/cmd/replay", {"id": "r"}) == OK
    assert gw.publish(f"{S}/sim/acl-a/evt/sim.counter", {"n": 1}) == DENIED
    assert gw.publish(f"{S}/sim/acl-a/state", {"state": "online"}) == DENIED
    assert gw.publish(f"{S}/gateway/gw-1/state", {"state": "online"}) == OK


def test_anonymous_plain_and_foreign_ca_clients_are_refused(in_store, peers, tmp_path):
    assert peers(in_store).connect().startswith("refused")              # TLS, no cert
    plain = Peer(in_store.port, ca="", tls=False)
    try:
        assert plain.connect().startswith("refused")                     # plain MQTT
    finally:
        plain.close()
    foreign = StorePKI.init(tmp_path / "foreign", "s0042")               # same store name,
    foreign.enrol("acl-a", "sim")                                        # another CA
    files = foreign.tls_files("acl-a")
    intruder = Peer(in_store.port, ca=str(in_store.pki.ca_crt), cert=str(files.cert),
                    key=str(files.key))
    try:
        assert intruder.connect().startswith("refused")
    finally:
        intruder.close()
    assert peers(in_store, "acl-a").connect() == OK                      # the genuine one


def test_revoked_certificate_cannot_connect_after_the_reload(in_store, peers):
    link = in_store.link("acl-revoked")
    old = peers(in_store, "acl-revoked")
    assert old.connect() == OK
    own = f"{S}/sim/acl-revoked/evt/sim.counter"
    assert old.publish(own, {"n": 1}) == OK
    serial = in_store.pki.get("acl-revoked").serial
    in_store.revoke("acl-revoked")                    # CRL re-issued, ACL re-written, SIGHUP
    assert serial in in_store.pki.revoked_serials()
    again = Peer(in_store.port, ca=link["tls_ca"], cert=link["tls_cert"], key=link["tls_key"])
    try:
        assert again.connect().startswith("refused")
    finally:
        again.close()
    assert old.publish(own, {"n": 2}) == DENIED       # the open connection has no rights left


def test_a_device_enrolled_while_the_broker_runs_works_at_once(in_store, peers):
    """enrol -> ACL re-written -> SIGHUP -> wait for the reload: no race with the first use."""
    for i in range(5):
        dev = peers(in_store, f"acl-new-{i}")       # enrols and reloads
        assert dev.connect() == OK
        assert dev.publish(f"{S}/sim/acl-new-{i}/evt/sim.counter", {"n": i}) == OK


def test_only_the_store_server_writes_store_side_acks(store_side, peers):
    """A forged retained ``{"seq": 9}`` on a device's store-side ack (the store server being
    down) from a device or from the gateway identity is refused; the store server's counts."""
    gw = peers(store_side, "gw-1", "gateway")
    dev = peers(store_side, "acl-a")
    assert gw.connect() == OK and dev.connect() == OK
    ack = f"{S}/sim/acl-a/ack"
    assert dev.publish(ack, {"seq": 9}, retain=True) == DENIED
    assert gw.publish(ack, {"seq": 9}, retain=True) == DENIED
    assert dev.publish(f"{S}/sim/acl-a/evt/sim.counter", {"n": 1}) == DENIED   # not its broker
    assert gw.publish(f"{S}/sim/acl-a/cmd/replay", {"id": "x"}) == DENIED
    store = peers(store_side, "store-1", "store_server")
    assert store.connect() == OK
    assert store.publish(ack, {"seq": 3}, retain=True) == OK
    assert store.publish(f"{S}/sim/acl-a/cmd/replay", {"id": "r"}) == OK
    late = peers(store_side, "gw-1", "gateway", client_id="gw-1-late")
    assert late.connect() == OK
    late.subscribe("se/v1/+/+/+/ack")                     # the retained watermark only
    assert late.wait_for(ack)
    assert [json.loads(p) for t, p, r in late.messages] == [{"seq": 3}]


def test_only_store_servers_read_events_and_batches_on_the_store_broker(store_side, peers):
    """The gateway writes events and batches there but cannot read them back (nor can a
    device, which has no rights on the store broker at all)."""
    gw = peers(store_side, "gw-1", "gateway")
    store = peers(store_side, "store-1", "store_server")
    for peer in (gw, store):
        assert peer.connect() == OK
        peer.subscribe("se/v1/+/+/+/batch")
        peer.subscribe("se/v1/+/+/+/evt/#")
    gw.subscribe("se/v1/+/+/+/ack")
    assert gw.publish(f"{S}/sim/acl-a/batch", b"SEB1") == OK
    assert gw.publish(f"{S}/sim/acl-a/evt/sim.counter", {"n": 1}) == OK
    assert store.wait_for(f"{S}/sim/acl-a/evt/sim.counter")
    assert store.topics() == [f"{S}/sim/acl-a/batch", f"{S}/sim/acl-a/evt/sim.counter"]
    # both PUBACKs are in: any copy for gw was queued before the store's ack (the sentinel)
    assert store.publish(f"{S}/sim/acl-a/ack", {"seq": 1}) == OK
    assert gw.wait_for(f"{S}/sim/acl-a/ack")
    assert gw.topics() == [f"{S}/sim/acl-a/ack"]


def test_revoke_with_restart_also_drops_the_open_connection(in_store, peers):
    link = in_store.link("acl-revoked-2")
    old = peers(in_store, "acl-revoked-2")
    other = peers(in_store, "acl-stays")
    assert old.connect() == OK and other.connect() == OK
    in_store.revoke("acl-revoked-2", restart=True)
    with old.cond:
        assert old.cond.wait_for(lambda: old.disconnects, 30)      # dropped by the restart
    again = Peer(in_store.port, ca=link["tls_ca"], cert=link["tls_cert"], key=link["tls_key"])
    try:
        assert again.connect().startswith("refused")
    finally:
        again.close()
    back = peers(in_store, "acl-stays", client_id="acl-stays-2")   # everyone else: welcome
    assert back.connect() == OK
    assert back.publish(f"{S}/sim/acl-stays/evt/sim.counter", {"n": 1}) == OK
