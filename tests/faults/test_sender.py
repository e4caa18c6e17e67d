"""The device sender on a link that is slow, not broken (issue 17).

A window the broker has not acknowledged (PUBACK) is still on its way: re-sending it after
``resend_timeout_s`` only queues duplicates behind it, and on a slow link those duplicates
crowd out new events until almost nothing new gets through (the 64 kbit/s device of the
flapping scenario carried 79% duplicates). A broker that took everything but whose receiver
never acknowledged is another matter: that still gets re-sent (tests/core/test_link.py).
"""
from __future__ import annotations

import json
import os
import signal
import time

from helpers.stack import device_config, wait_for
from storeedge.brokerproc import subscribe_acked
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import DeviceService


def test_nothing_is_re_sent_while_the_broker_has_not_acknowledged_it(broker, tmp_path):
    seen: list[int] = []
    watcher = broker.client("gw-1", "gateway")        # reads device events (ACL)
    watcher.on_message = lambda _c, _u, msg: seen.append(json.loads(msg.payload)["seq"])
    watcher.connect("127.0.0.1", broker.port)
    watcher.loop_start()
    subscribe_acked(watcher, "se/v1/+/+/+/evt/#")
    svc = DeviceService(device_config("dev-s", broker.url, tmp_path))
    svc.start()
    try:
        assert svc.link.wait_connected(10)
        os.kill(broker.proc.pid, signal.SIGSTOP)      # no PUBACK until it is resumed
        try:
            last = [svc.emit(SimCounter(n=i)).seq for i in range(5)][-1]
            assert wait_for(lambda: svc.sent >= last, 10)
            time.sleep(3 * svc.cfg.link.resend_timeout_s + 0.5)   # three stall periods
            assert svc.resends == 0, "re-sent a window the broker had not acknowledged"
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: len(seen) >= last, 10)
        assert sorted(seen) == list(range(1, last + 1)), "each event once"
    finally:
        svc.close()
        watcher.loop_stop()
        watcher.disconnect()


def test_blind_re_sends_back_off_while_nothing_is_acknowledged(broker, tmp_path):
    """The broker takes everything, the receiver never acknowledges: re-sends continue (the
    safety net for a receiver that lost events), but each waits twice as long as the last
    (resend_timeout_s 1 s: at about 1, 3 and 7 s; without the back-off one every second)."""
    svc = DeviceService(device_config("dev-b", broker.url, tmp_path))
    svc.start()
    try:
        assert svc.link.wait_connected(10)
        last = [svc.emit(SimCounter(n=i)).seq for i in range(5)][-1]
        assert wait_for(lambda: svc.resends >= last, 10), "the first re-send comes"
        time.sleep(5.5)             # 6.5 s after it: 5 more re-sends without a back-off
        assert svc.resends <= 3 * last, f"{svc.resends // last} re-sends of the window"
    finally:
        svc.close()
