"""A network fault rig from Linux network namespaces, veth pairs, iptables and tc.

Each host (a device, the gateway, the store server) is a network namespace the rig creates
and removes; links are veth pairs with their own /30. Faults, per link and per direction:

* loss: ``iptables -m statistic --mode random --probability P -j DROP`` on the receiving side;
* partition: every packet dropped until :meth:`Link.heal`;
* rate: a ``tc`` token bucket (tbf) on both ends;
* delay with jitter: this kernel has no netem, so :mod:`delayrelay` (a userspace TCP relay in
  the path) adds it; :meth:`Host.relay` starts one inside a namespace.

Nothing leaves the machine: addresses are inside namespaces the rig made, and :meth:`close`
deletes them (and with them their veths and rules). Requires root, ``ip netns`` and iptables:
:func:`unavailable` says why not, for a skip message.
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

RELAY_SCRIPT = Path(__file__).with_name("delayrelay.py")
CHAIN = "SE-FAULTS"
_ids = itertools.count(1)


def unavailable() -> str | None:
    """Why the rig cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the network fault rig needs root (network namespaces, iptables, tc)"
    for tool in ("ip", "tc", "iptables", "faketime"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install iproute2 iptables faketime)"
    probe = f"se-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        rule = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-L", "-n"],
                              capture_output=True, text=True)
        if rule.returncode != 0:
            return f"iptables does not work in a namespace: {rule.stderr.strip()[:200]}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*argv: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    """One network namespace."""

    ns: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def sh(self, *argv: str) -> str:
        """Run a command inside the namespace (raises with its stderr on failure)."""
        return _run("ip", "netns", "exec", self.ns, *argv)

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start a process inside the namespace (stopped by :meth:`NetRig.close`).

        It leads a process group of its own: a wrapper such as ``faketime`` runs the real
        program as its child, and the whole group is stopped at the end.
        """
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv],
                                start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def python(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """``python -m ...`` (or a script) inside the namespace, unbuffered."""
        env = dict(kwargs.pop("env", os.environ), PYTHONUNBUFFERED="1")
        return self.popen([sys.executable, *argv], env=env, **kwargs)

    def relay(self, listen: str, target: str, delay_ms: float, jitter_ms: float,
              seed: int = 0) -> subprocess.Popen:
        """A :mod:`delayrelay` in this namespace; returns once it accepts connections."""
        proc = self.python([str(RELAY_SCRIPT), "--listen", listen, "--target", target,
                            "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
                            "--seed", str(seed)], stdout=subprocess.PIPE)
        if proc.stdout.readline().strip() != b"listening":
            raise RuntimeError(f"delay relay {listen} -> {target} did not start")
        return proc

    def forwarding(self) -> None:
        """Route packets between this host's links (a mesh hop)."""
        self.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def route(self, subnet: str, via: str) -> None:
        self.sh("ip", "route", "replace", subnet, "via", via)

    def stop_procs(self) -> None:
        """TERM every process group started here, KILL what is left after 10 s."""
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)     # the leader's children, if it left any
            if proc.poll() is None:
                proc.wait(5)
        self.procs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Link:
    """A veth pair between two hosts: ``a`` side ``a_ip``, ``b`` side ``b_ip`` (a /30)."""

    a: Host
    b: Host
    a_if: str
    b_if: str
    a_ip: str
    b_ip: str
    subnet: str

    def _ends(self):
        return ((self.a, self.a_if), (self.b, self.b_if))

    def loss(self, probability: float) -> None:
        """Drop each packet arriving on either end with ``probability`` (0 clears)."""
        self.clear_drops()
        if probability <= 0:
            return
        for host, ifname in self._ends():
            for chain in ("INPUT", "FORWARD"):
                host.sh("iptables", "-A", f"{CHAIN}-{chain}", "-i", ifname, "-m", "statistic",
                        "--mode", "random", "--probability", f"{probability:.4f}", "-j", "DROP")

    def partition(self) -> None:
        """Drop every packet in both directions until :meth:`heal`."""
        self.clear_drops()
        for host, ifname in self._ends():
            for chain in ("INPUT", "FORWARD"):
                host.sh("iptables", "-A", f"{CHAIN}-{chain}", "-i", ifname, "-j", "DROP")

    def heal(self) -> None:
        self.clear_drops()

    def clear_drops(self) -> None:
        for host, _ifname in self._ends():
            for chain in ("INPUT", "FORWARD"):
                host.sh("iptables", "-F", f"{CHAIN}-{chain}")

    def rate(self, kbit: int | None) -> None:
        """Limit both directions to ``kbit`` kbit/s with a token bucket (None: unlimited)."""
        for host, ifname in self._ends():
            subprocess.run(["ip", "netns", "exec", host.ns, "tc", "qdisc", "del", "dev", ifname,
                            "root"], capture_output=True)
            if kbit:
                host.sh("tc", "qdisc", "add", "dev", ifname, "root", "tbf", "rate",
                        f"{kbit}kbit", "burst", "4kb", "latency", "2s")


class NetRig:
    """Hosts and links of one test; a context manager that removes everything it made."""

    def __init__(self, tag: str = "t"):
        self.prefix = f"se{os.getpid() % 100000}{tag}"
        self.hosts: dict[str, Host] = {}
        self.links: list[Link] = []

    def __enter__(self) -> "NetRig":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def host(self, name: str) -> Host:
        """A new namespace with loopback up and the rig's fault chains hooked in."""
        host = Host(f"{self.prefix}-{name}")
        _run("ip", "netns", "add", host.ns)
        self.hosts[name] = host
        host.sh("ip", "link", "set", "lo", "up")
        for chain in ("INPUT", "FORWARD"):
            host.sh("iptables", "-N", f"{CHAIN}-{chain}")
            host.sh("iptables", "-A", chain, "-j", f"{CHAIN}-{chain}")
        return host

    def link(self, a: Host, b: Host) -> Link:
        """A veth pair ``a <-> b`` with its own /30 in 10.231.0.0/16 (inside the namespaces)."""
        k = next(_ids) % 16000 + 1
        subnet_base = f"10.231.{k // 64}.{(k % 64) * 4}"
        octets = subnet_base.split(".")
        a_ip = ".".join(octets[:3] + [str(int(octets[3]) + 1)])
        b_ip = ".".join(octets[:3] + [str(int(octets[3]) + 2)])
        a_if, b_if = f"sea{k}", f"seb{k}"
        _run("ip", "link", "add", a_if, "netns", a.ns, "type", "veth", "peer", "name", b_if,
             "netns", b.ns)
        for host, ifname, ip in ((a, a_if, a_ip), (b, b_if, b_ip)):
            host.sh("ip", "addr", "add", f"{ip}/30", "dev", ifname)
            host.sh("ip", "link", "set", ifname, "up")
        link = Link(a, b, a_if, b_if, a_ip, b_ip, f"{subnet_base}/30")
        self.links.append(link)
        return link

    def close(self) -> None:
        """Stop every process started in the rig's namespaces, then delete the namespaces."""
        for host in self.hosts.values():
            host.stop_procs()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        self.hosts.clear()
        self.links.clear()
