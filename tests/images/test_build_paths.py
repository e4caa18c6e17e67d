"""images/build works on real paths: ``systemctl --root`` refuses to enable a template
instance that has a drop-in folder when the root is reached through a symlink ("Channel number
out of range", ECHRNG; every storeedge@KIND.service has one), which is how a build whose
images/out is linked to a bigger disk failed at its last step.  The build resolves its output
and cache folders with ``pwd -P`` first."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "images" / "build"


def _root(base: Path) -> Path:
    """A minimal merged-/usr root with a template unit and a drop-in for one instance."""
    root = base / "real" / "root"
    system = root / "etc/systemd/system"
    (system / "app@one.service.d").mkdir(parents=True)
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (system / "app@.service").write_text("[Service]\nExecStart=/bin/true\n"
                                         "[Install]\nWantedBy=multi-user.target\n")
    (system / "app@one.service.d/50-one.conf").write_text("[Service]\n")
    (root / "usr/lib/systemd/system/multi-user.target").write_text("[Unit]\n")
    return root


def _enable(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemctl", f"--root={root}", "--quiet", "enable", "app@one.service"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="no systemctl on this machine")
def test_systemctl_root_through_a_symlink_fails_and_the_real_path_works(tmp_path):
    root = _root(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    through_link = _enable(tmp_path / "link" / "root")
    assert through_link.returncode != 0, "systemd fixed it: the pwd -P in images/build may go"
    real = _enable(Path(subprocess.run(["bash", "-c", f"cd {tmp_path / 'link' / 'root'} && "
                                        "pwd -P"], capture_output=True, text=True,
                                       check=True).stdout.strip()))
    assert real.returncode == 0, real.stderr
    assert (root / "etc/systemd/system/multi-user.target.wants/app@one.service").is_symlink()


def test_the_build_resolves_its_output_and_cache_folders():
    text = BUILD.read_text()
    assert re.search(r'^OUT=\$\(cd "\$OUT" && pwd -P\)$', text, re.M)
    assert re.search(r'^CACHE=\$\(cd "\$CACHE" && pwd -P\)$', text, re.M)
    assert text.index("pwd -P") < text.index("ROOT=$OUT/rootfs")
