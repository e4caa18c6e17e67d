"""Start a throwaway PostgreSQL server (initdb + postgres) on a free loopback port.

As root, the server runs as the ``postgres`` system user (PostgreSQL refuses to run as root).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from storeedge.brokerproc import free_port


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def postgres_available() -> bool:
    return _bindir() is not None


class PostgresServer:
    """One PostgreSQL cluster in ``workdir``; ``dsn`` connects as the superuser."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.bindir = _bindir()
        self.proc: subprocess.Popen | None = None
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run_as(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def start(self) -> None:
        data = self.workdir / "data"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            os.chmod(self.workdir, 0o755)
            parent = self.workdir.parent
            while str(parent) not in ("/", "/tmp"):
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
                parent = parent.parent
        done = subprocess.run(self._run_as([f"{self.bindir}/initdb", "-D", str(data), "-A",
                                            "trust", "-U", self.user, "--no-sync"]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb in {data} failed ({done.returncode}): {done.stderr}")
        self.proc = subprocess.Popen(
            self._run_as([f"{self.bindir}/postgres", "-D", str(data), "-p", str(self.port),
                          "-h", "127.0.0.1", "-k", str(self.workdir), "-c", "fsync=on"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.dsn, connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
