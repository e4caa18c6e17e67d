"""A userspace TCP relay that delays each direction by ``delay ± jitter`` (no netem here).

This kernel has no netem qdisc, so delay with jitter is added by a relay in the path: every
chunk read from one side is written to the other side ``delay + uniform(-jitter, +jitter)``
seconds later, but never before the chunk read ahead of it (a TCP byte stream stays in order;
jitter then shows up as bursts, as it does after a Wi-Fi retransmission).

Run inside a network namespace as a process of its own::

    python delayrelay.py --listen 0.0.0.0:18830 --target 127.0.0.1:1883 --delay-ms 300 \
        --jitter-ms 100 --seed 7

It prints ``listening`` once it accepts connections and stops on SIGTERM.
"""
from __future__ import annotations

import argparse
import heapq
import random
import signal
import socket
import sys
import threading
import time
from typing import NamedTuple


class Delay(NamedTuple):
    """Delay of one direction, seconds."""

    mean_s: float
    jitter_s: float


class _Pipe:
    """One direction of one connection: read, hold until due, write in order."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: Delay, rng: random.Random):
        self.src, self.dst, self.delay, self.rng = src, dst, delay, rng
        self.queue: list[tuple[float, int, bytes]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.last_due = 0.0
        self.n = 0

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.src.recv(65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.closed = True
                    self.cond.notify()
                    return
                due = time.monotonic() + max(0.0, self.delay.mean_s +
                                             self.rng.uniform(-1, 1) * self.delay.jitter_s)
                self.last_due = due = max(due, self.last_due)
                self.n += 1
                heapq.heappush(self.queue, (due, self.n, chunk))
                self.cond.notify()

    def _write(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if not self.queue:
                    break
                due, _n, chunk = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                heapq.heappop(self.queue)
            try:
                self.dst.sendall(chunk)
            except OSError:
                break
        for sock in (self.dst, self.src):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _addr(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def serve(listen: tuple[str, int], target: tuple[str, int], delay: Delay, seed: int) -> None:
    """Accept connections forever; each gets two delayed pipes to ``target``."""
    rng = random.Random(seed)
    server = socket.create_server(listen, reuse_port=False)
    sys.stdout.write("listening\n")
    sys.stdout.flush()
    while True:
        client, _peer = server.accept()
        try:
            upstream = socket.create_connection(target, timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _Pipe(client, upstream, delay, random.Random(rng.random())).start()
        _Pipe(upstream, client, delay, random.Random(rng.random())).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    parser.add_argument("--target", required=True, help="HOST:PORT to connect to")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_a: sys.exit(0))
    serve(_addr(args.listen), _addr(args.target),
          Delay(args.delay_ms / 1000.0, args.jitter_ms / 1000.0), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
