"""``storeedge store-server user add`` and the first-start hint."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from webkit import PASSWORD

from storeedge.firmware.common.config import config_from_dict
from storeedge.server.config import StoreServerConfig
from storeedge.server.db import open_store_db
from storeedge.server.web.cli import start_web
from storeedge.server.web.store import WebStore


def run(args, password=None):
    env = dict(os.environ)
    env.pop("STOREEDGE_PASSWORD", None)
    if password is not None:
        env["STOREEDGE_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "storeedge", "store-server", "user", *args],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def test_user_add_creates_a_manager_and_refuses_bad_input(tmp_path):
    db = f"sqlite:///{tmp_path}/store.db"
    done = run(["add", "mara", "--role", "manager", "--db", db], PASSWORD)
    assert done.returncode == 0 and done.stdout.strip() == "added manager mara"
    bad = run(["add", "eve", "--role", "manager", "--db", db], "short")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "refused: password: 8 to 256 characters"
    again = run(["add", "mara", "--role", "associate", "--db", db], PASSWORD)
    assert again.returncode == 1 and "already exists" in again.stderr
    no_pw = run(["add", "eve", "--role", "manager", "--db", db])
    assert no_pw.returncode == 2
    assert no_pw.stderr.strip() == "no password: set STOREEDGE_PASSWORD or run in a terminal"
    role = run(["add", "eve", "--role", "admin", "--db", db], PASSWORD)
    assert role.returncode == 2 and "invalid choice: 'admin'" in role.stderr
    ws = WebStore(open_store_db(db))
    try:
        assert [(u.name, u.role) for u in ws.users()] == [("mara", "manager")]
        assert "Traceback" not in bad.stderr + again.stderr + no_pw.stderr
    finally:
        ws.db.close()


def test_first_start_prints_how_to_create_the_first_manager(tmp_path, capsys):
    cfg = config_from_dict({"server": {"db": f"sqlite:///{tmp_path}/store.db"},
                            "web": {"enabled": True, "port": 0},
                            "security": {"insecure": True}}, StoreServerConfig)
    web = start_web(cfg, None)
    try:
        out = capsys.readouterr().out
        assert "no accounts yet" in out
        assert f"storeedge store-server user add NAME --role manager --db {cfg.server.db}" in out
        with urllib.request.urlopen(web.url + "/login", timeout=10) as resp:
            assert "storeedge store-server user add" in resp.read().decode()
    finally:
        web.close()
    cfg.web.enabled = False
    assert start_web(cfg, None) is None
