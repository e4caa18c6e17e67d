"""The build cannot lie: images/lib/chroot-guard.sh and images/lib/cache.sh, run for real.

A tiny root (the host's /usr bind-mounted read-only, /proc mounted) stands in for the image
root; processes are left running inside it with ``chroot`` exactly as a package's postinst
leaves a daemon behind.  The same shell functions images/build calls after the bootstrap and
after every chroot step must stop them, unmount everything deepest first, and refuse (naming the
mount) when a mount cannot be freed, so that no tarball, du or mkfs ever walks a live /proc.
Needs root and mount(2) (CI runs as root); skipped with the reason otherwise.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "images/lib"
BUILD = REPO / "images/build"


def sh(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with both libraries sourced; ``$1..`` are ``args``."""
    prelude = f". '{LIB}/chroot-guard.sh'; . '{LIB}/cache.sh'; "
    return subprocess.run(["bash", "-c", prelude + script, "guard-test", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GUARD_TERM_WAIT_S": "2", "GUARD_KILL_WAIT_S": "5"})


def mounts_below(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [line.split()[4].replace("\\040", " ") for line in fh]
    return [p for p in points if p.startswith(prefix)]


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise OSError(proc.stderr.strip())


def _need_mount_privilege(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the guard test mounts /proc and bind mounts in a tiny chroot")
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=64k", "guardprobe", str(probe))
    except OSError as exc:
        pytest.skip(f"mount(2) is not permitted here ({exc})")
    subprocess.run(["umount", str(probe)], check=True, timeout=30)


class TinyRoot:
    """A chroot-able root: /usr bound read-only from the host, usrmerge symlinks, /proc."""

    def __init__(self, tmp_path: Path):
        self.path = (tmp_path / "rootfs").resolve()
        for sub in ("usr", "proc", "tmp", "mnt", "etc"):
            (self.path / sub).mkdir(parents=True)
        for link in ("bin", "sbin", "lib", "lib64"):
            if Path("/usr", link).exists():
                (self.path / link).symlink_to(f"usr/{link}")
        (self.path / "etc/marker").write_text("root contents\n")
        self.procs: list[subprocess.Popen] = []

    def mount_usr_and_proc(self) -> None:
        _mount("--bind", "/usr", str(self.path / "usr"))
        _mount("-o", "remount,bind,ro", str(self.path / "usr"))
        _mount("-t", "proc", "proc", str(self.path / "proc"))

    def start_in_chroot(self, command: str) -> subprocess.Popen:
        """A process whose root is this root (like a daemon a postinst left behind)."""
        proc = subprocess.Popen(["chroot", str(self.path), "/bin/sh", "-c", command],
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_rooted(self, proc: subprocess.Popen) -> None:
        """Wait until ``proc`` has chrooted (its /proc/PID/root is this root)."""
        for _ in range(200):
            try:
                if os.readlink(f"/proc/{proc.pid}/root") == str(self.path):
                    return
            except OSError:
                pass
            subprocess.run(["sleep", "0.05"], check=True)
        raise AssertionError(f"pid {proc.pid} never entered {self.path}")

    def cleanup(self) -> None:
        """Test teardown only: whatever a failed assertion left behind goes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for point in sorted(mounts_below(self.path), key=lambda p: -p.count("/")):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture
def tiny_root(tmp_path):
    _need_mount_privilege(tmp_path)
    root = TinyRoot(tmp_path)
    try:
        yield root
    finally:
        root.cleanup()


def test_guard_stops_processes_left_in_the_chroot_and_unmounts_proc(tiny_root, tmp_path):
    root = tiny_root.path
    tiny_root.mount_usr_and_proc()
    polite = tiny_root.start_in_chroot("exec sleep 600")
    stubborn = tiny_root.start_in_chroot("trap '' TERM; exec sleep 600")   # ignores SIGTERM
    for proc in (polite, stubborn):
        tiny_root.wait_rooted(proc)
    assert (root / "proc/self").exists(), "the chroot's /proc is live"
    tarball = tmp_path / "cache/bootstrap.tar"
    tarball.parent.mkdir()

    # Without the guard, the cache step refuses to tar a root with /proc mounted in it.
    refused = sh('cache_write "$1" "$2"', str(root), str(tarball))
    assert refused.returncode == 1
    assert f"still mounted below {root}" in refused.stderr and f"{root}/proc" in refused.stderr
    assert list(tarball.parent.iterdir()) == []

    # The build's sequence after the bootstrap: guard, then cache.
    done = sh('chroot_guard "$1" "the bootstrap" && cache_write "$1" "$2"', str(root), str(tarball))
    assert done.returncode == 0, done.stderr
    assert f"after the bootstrap: stopping processes still running in {root}" in done.stderr
    assert f"still running after SIGTERM, sending SIGKILL: {stubborn.pid}\n" in done.stderr
    assert polite.wait(timeout=10) == -signal.SIGTERM
    assert stubborn.wait(timeout=10) == -signal.SIGKILL
    assert mounts_below(root) == []
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "./etc/marker" in names and "./proc" in names
    assert not [n for n in names if n.startswith("./proc/")], "tarred a live /proc"
    assert not [n for n in names if n.startswith("./usr/")], "tarred the host's /usr"
    assert sorted(p.name for p in tarball.parent.iterdir()) == ["bootstrap.tar",
                                                               "bootstrap.tar.sha256"]


def test_guard_unmounts_nested_mounts_deepest_first(tiny_root):
    root = tiny_root.path
    outer = root / "tmp/a b"
    inner = outer / "c"
    outer.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64k", "guardtest", str(outer))
    inner.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64k", "guardtest", str(inner))
    _mount("-t", "proc", "proc", str(root / "proc"))
    listed = sh('guard_mounts "$1"', str(root))
    assert listed.stdout.splitlines() == [str(inner), str(outer), str(root / "proc")]
    done = sh('chroot_guard "$1" "a chroot step"', str(root))
    assert done.returncode == 0, done.stderr
    assert mounts_below(root) == [] and done.stderr == ""


def test_a_mount_that_cannot_be_freed_fails_naming_it(tiny_root, tmp_path):
    """A process outside the chroot holds a mount below the root: no lazy unmount, no tar."""
    root = tiny_root.path
    _mount("-t", "tmpfs", "-o", "size=64k", "guardtest", str(root / "mnt"))
    _mount("-t", "proc", "proc", str(root / "proc"))
    holder = subprocess.Popen(["sleep", "600"], cwd=root / "mnt", stdin=subprocess.DEVNULL)
    tiny_root.procs.append(holder)
    tarball = tmp_path / "bootstrap.tar"
    failed = sh('chroot_guard "$1" "the bootstrap" && cache_write "$1" "$2"',
                str(root), str(tarball))
    assert failed.returncode == 1
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith(f"chroot-guard: after the bootstrap: cannot unmount {root}/mnt: ")
    assert "busy" in line and f"{holder.pid} (sleep)" in line
    assert mounts_below(root) == [str(root / "mnt")], "it unmounted what it could, nothing lazily"
    assert not tarball.exists() and not list(tmp_path.glob("bootstrap.tar*"))
    walk = sh('guard_assert_unmounted "$1" "du of the root"', str(root))
    assert walk.returncode == 1 and f"du of the root: refused, still mounted below {root}: " \
        f"{root}/mnt" in walk.stderr
    holder.kill()
    holder.wait(timeout=10)
    again = sh('chroot_guard "$1" "the retry"', str(root))
    assert again.returncode == 0 and mounts_below(root) == []


def test_failing_tar_leaves_no_cache_file(tiny_root, tmp_path):
    """tar runs out of space half way (a real ENOSPC on a small tmpfs): nothing is cached."""
    root = tiny_root.path
    (root / "etc/big").write_bytes(os.urandom(2 * 1024 * 1024))
    cache = tmp_path / "cache"
    cache.mkdir()
    _mount("-t", "tmpfs", "-o", "size=512k", "guardcache", str(cache))
    try:
        failed = sh('cache_write "$1" "$2"', str(root), str(cache / "bootstrap.tar"))
        assert failed.returncode == 1
        assert "cache: tar exited with status 2" in failed.stderr and "no cache written" in \
            failed.stderr
        assert "Wrote only" in failed.stderr        # the short write on the full tmpfs
        assert list(cache.iterdir()) == [], "a partial tarball was left behind"
    finally:
        subprocess.run(["umount", str(cache)], check=True, timeout=30)


def _small_root(tmp_path: Path) -> Path:
    root = tmp_path / "small-root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(os.urandom(64 * 1024))
    return root


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-checksum"])
def test_corrupt_cache_is_refused_and_a_good_one_restores(tmp_path, damage):
    """No root needed: the checksum is verified before a cache is used."""
    root = _small_root(tmp_path)
    tarball = tmp_path / "cache/bootstrap.tar"
    tarball.parent.mkdir()
    made = sh('cache_write "$1" "$2"', str(root), str(tarball))
    assert made.returncode == 0, made.stderr
    assert "cache: wrote bootstrap.tar" in made.stderr
    assert sorted(p.name for p in tarball.parent.iterdir()) == ["bootstrap.tar",
                                                               "bootstrap.tar.sha256"]
    restored = tmp_path / "restored"
    ok = sh('cache_restore "$1" "$2"', str(tarball), str(restored))
    assert ok.returncode == 0, ok.stderr
    assert (restored / "bin/tool").read_bytes() == (root / "bin/tool").read_bytes()

    data = tarball.read_bytes()
    if damage == "flip":
        pos = len(data) // 2
        tarball.write_bytes(data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1:])
        expect = "is corrupt or truncated"
    elif damage == "truncate":
        tarball.write_bytes(data[: len(data) // 3])
        expect = "is corrupt or truncated"
    else:
        (tarball.parent / "bootstrap.tar.sha256").unlink()
        expect = "has no checksum file"
    refused = sh('cache_restore "$1" "$2"', str(tarball), str(tmp_path / "again"))
    assert refused.returncode == 1
    assert f"cache: bootstrap.tar {expect}" in refused.stderr and "discarded, rebuilding" in \
        refused.stderr
    assert list(tarball.parent.iterdir()) == [] and not (tmp_path / "again").exists()


def test_build_uses_the_guard_and_never_unmounts_lazily():
    """images/build wires the guard in: after the bootstrap, around every chroot step, and
    before du; the old lazy unmount and unchecked tar are gone."""
    text = BUILD.read_text()
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "umount -" in line or "-cf" in line]
    bare = [line for line in code if line.strip().startswith("chroot \"$ROOT\"")]
    assert bare == ['    chroot "$ROOT" "$@" >> "$OUT/logs/scripts.log" 2>&1 || rc=$?'], \
        "every chroot step goes through in_chroot (guarded)"
    assert text.index('chroot_guard "$ROOT" "the bootstrap (mmdebstrap)"') < \
        text.index('cache_write "$ROOT" "$TARBALL"')
    assert text.index('guard_assert_unmounted "$ROOT" "du/mkfs of the root"') < \
        text.index('du -sm "$ROOT"')
    syntax = subprocess.run(["bash", "-n", str(BUILD)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_cache_keeps_numeric_owners_and_file_capabilities(tmp_path):
    """Debian's ping carries cap_net_raw as an xattr: the cache must keep it (and owners
    by number, not by the build host's user names)."""
    if os.geteuid() != 0 or shutil.which("setcap") is None:
        pytest.skip("needs root and setcap (libcap2-bin) to set a file capability")
    root = _small_root(tmp_path)
    tool = root / "bin/tool"
    os.chown(tool, 4242, 4343)
    subprocess.run(["setcap", "cap_net_raw+ep", str(tool)], check=True, timeout=30)
    tarball = tmp_path / "cache/bootstrap.tar"
    tarball.parent.mkdir()
    assert sh('cache_write "$1" "$2"', str(root), str(tarball)).returncode == 0
    restored = tmp_path / "restored"
    done = sh('cache_restore "$1" "$2"', str(tarball), str(restored))
    assert done.returncode == 0, done.stderr
    st = (restored / "bin/tool").stat()
    assert (st.st_uid, st.st_gid) == (4242, 4343)
    caps = subprocess.run(["getcap", str(restored / "bin/tool")], capture_output=True,
                          text=True, timeout=30).stdout
    assert "cap_net_raw" in caps
