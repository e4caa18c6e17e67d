"""Gateway relay and store server against real Mosquitto brokers, SQLite and PostgreSQL."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from helpers.events import Publisher, envelope, stored
from helpers.seals import sealed_json
from helpers.stack import (device_config, gateway_config, gateway_dict, store_config,
                           wait_for, write_yaml)
from storeedge.brokerproc import subscribe_acked
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import DeviceService
from storeedge.firmware.gateway.relay import Relay
from storeedge.server.consumer import StoreServer
from storeedge.server.db import open_store_db


@pytest.fixture
def brokers(broker_factory):
    return broker_factory("down"), broker_factory("up")


def test_bad_input_is_rejected_counted_and_never_blocks(brokers, tmp_path):
    down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, up.url, tmp_path, devices=["dev-ok"],
                                 max_payload_bytes=4096))
    store = StoreServer(store_config(up.url, db))
    relay.start()
    store.start()
    pub = Publisher(down.url)
    good = [envelope("dev-ok", i, i) for i in range(1, 4)]
    sj = lambda env: sealed_json(env, down.url)  # noqa: E731 (what the device would send)
    topic = good[0].topic
    try:
        assert relay.down.wait_connected(10)
        # the first good event must be in before the conflicting copy of its seq is sent
        assert wait_for(lambda: (pub.send(topic, sj(good[0])),
                                 wait_for(lambda: stored(db, "dev-ok") == [1], 2))[1], 20)
        pub.send(topic, b"{not json")                                      # malformed
        pub.send(topic, json.dumps({"v": 1, "dev": "dev-ok"}).encode())   # schema
        pub.send(topic, sj(envelope("dev-ok", 9, 9, body={"n": "x"})))   # body schema
        pub.send(topic, sj(envelope("dev-ok", 9, 9, body={"n": 1, "pad": "p" * 9000})))
        pub.send(envelope("dev-zz", 1, 1).topic, sj(envelope("dev-zz", 1, 1)))  # unknown
        pub.send(topic.replace("dev-ok", "dev-zz"), sj(good[1]))    # topic mismatch
        pub.send(topic, sj(good[1]))
        pub.send(topic, sj(envelope("dev-ok", 1, 777)))             # seq reused
        pub.send(topic, sj(good[2]))
        assert wait_for(lambda: stored(db, "dev-ok") == [1, 2, 3], 15)
        counts = relay.store.rejects
        assert wait_for(lambda: sum(counts.values()) == 6, 5)
        assert counts == {"malformed": 1, "schema": 2, "oversized": 1, "unknown_device": 1,
                          "topic_mismatch": 1}
        assert wait_for(lambda: _conflicts(relay) == 1, 5)
    finally:
        pub.close()
        relay.close()
        store.close()


def _conflicts(relay) -> int:
    with relay.store.committer.lock:
        return relay.store.conn.execute("SELECT conflicts FROM devices WHERE dev='dev-ok'") \
            .fetchone()[0]


def test_two_store_servers_share_the_load_and_store_each_event_once(brokers, tmp_path):
    down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    servers = [StoreServer(store_config(up.url, db, instance=f"store-{i}")) for i in (1, 2)]
    for s in servers:
        s.start()
    relay.start()
    devs = [DeviceService(device_config(f"dev-{k}", down.url, tmp_path)) for k in "abc"]
    try:
        for svc in devs:
            svc.start()
        lasts = {}
        for i in range(200):
            for svc in devs:
                lasts[svc.identity.dev] = svc.emit(SimCounter(n=i)).seq
        for dev, last in lasts.items():
            assert wait_for(lambda: stored(db, dev) == list(range(1, last + 1)), 30), dev
        assert all(s.stored > 0 for s in servers), "both instances took part"
        # plus the gateway's own status events (one may land between two reads: re-read)
        assert wait_for(lambda: sum(s.stored for s in servers) == sum(lasts.values())
                        + len(stored(db, relay.own.dev)), 5)
    finally:
        for svc in devs:
            svc.close()
        relay.close()
        for s in servers:
            s.close()


def test_postgresql_sink(brokers, tmp_path, postgres):
    down, up = brokers
    import psycopg

    name = f"t{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    db = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    servers = [StoreServer(store_config(up.url, db, instance=f"pg-{i}")) for i in (1, 2)]
    for s in servers:
        s.start()
    relay.start()
    svc = DeviceService(device_config("dev-pg", down.url, tmp_path))
    try:
        svc.start()
        last = [svc.emit(SimCounter(n=i)).seq for i in range(150)][-1]
        assert wait_for(lambda: stored(db, "dev-pg") == list(range(1, last + 1)), 30)
        assert svc.wait_acked(last, 10)
        pg = open_store_db(db)
        # two instances may commit neighbours concurrently; the watermark catches up
        assert wait_for(lambda: pg.query("SELECT wm FROM devices WHERE dev='dev-pg'")[0][0]
                        == last, 10)
        pg.close()
    finally:
        svc.close()
        relay.close()
        for s in servers:
            s.close()


def test_gap_is_recorded_and_replay_requested(brokers, tmp_path):
    """A seq that never reaches the store: the hole is recorded and a replay requested."""
    _down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    store = StoreServer(store_config(up.url, db))
    store.start()
    requests = []
    watcher = up.client("gw-1", "gateway")          # the gateway reads store commands
    watcher.on_message = lambda _c, _u, m: requests.append(json.loads(m.payload))
    watcher.connect("127.0.0.1", up.port)
    watcher.loop_start()
    subscribe_acked(watcher, "se/v1/+/+/+/cmd/replay")
    pub = Publisher(up.url)
    try:
        assert store.link.wait_connected(10)
        for seq in (1, 2, 5):
            env = envelope("dev-g", seq, seq)
            pub.send(env.topic, sealed_json(env, up.url))
        assert wait_for(lambda: requests, 10)
        assert requests[0]["args"] == {"from": 3, "to": 4}
        gaps = store.db.query("SELECT first_seq, last_seq, reason FROM gaps WHERE dev='dev-g'")
        assert gaps == [(3, 4, "hole")]
        for seq in (3, 4):
            env = envelope("dev-g", seq, seq)
            pub.send(env.topic, sealed_json(env, up.url))
        assert wait_for(lambda: store.db.query(
            "SELECT wm FROM devices WHERE dev='dev-g'")[0][0] == 5, 10)
        assert wait_for(lambda: store.db.query(
            "SELECT resolved IS NOT NULL FROM gaps WHERE dev='dev-g'")[0][0] == 1, 5)
    finally:
        pub.close()
        watcher.loop_stop()
        store.close()


def test_gateway_status_command(brokers, tmp_path):
    down, up = brokers
    cfg_path = write_yaml(tmp_path / "gw.yaml", gateway_dict(down.url, up.url, tmp_path))
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    relay.start()
    svc = DeviceService(device_config("dev-s", down.url, tmp_path))
    svc.start()
    try:
        last = [svc.emit(SimCounter(n=i)).seq for i in range(20)][-1]
        assert svc.wait_acked(last, 10)
        out = subprocess.run([sys.executable, "-m", "storeedge", "gateway", "status",
                              "--config", str(cfg_path)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        line = next(l for l in out.stdout.splitlines() if l.startswith("dev-s"))
        fields = line.split()
        assert fields[2] == str(last) and fields[3] == str(last)
        assert int(fields[5]) == last, "no store server: everything is backlog"
        assert all(len(l) <= 80 for l in out.stdout.splitlines())
    finally:
        svc.close()
        relay.close()


def test_failed_commit_is_not_acknowledged_and_is_redelivered(brokers, tmp_path):
    """A commit that fails (disk full, I/O error) must not PUBACK: the broker re-delivers."""
    down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, up.url, tmp_path))
    store = StoreServer(store_config(up.url, db))
    real_apply, failures = relay.store._apply, []

    def failing_once(conn, items):
        if not failures:
            failures.append(len(items))
            raise OSError("disk full (injected)")
        return real_apply(conn, items)

    relay.store.committer._apply = failing_once
    relay.start()
    store.start()
    svc = DeviceService(device_config("dev-x", down.url, tmp_path))
    try:
        svc.start()
        last = [svc.emit(SimCounter(n=i)).seq for i in range(20)][-1]
        assert wait_for(lambda: stored(db, "dev-x") == list(range(1, last + 1)), 30)
        assert failures, "the injected failure happened"
        assert relay.down.connects >= 2, "the gateway dropped the link to get re-delivery"
    finally:
        svc.close()
        relay.close()
        store.close()
