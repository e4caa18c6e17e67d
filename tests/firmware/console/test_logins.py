"""Per-technician logins: named users each with their own scrypt hash, commits recorded by
name; the `storeedge console` command on a real pty."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml
from helpers.console_rig import CHEAP, PtyTerminal, Terminal

from storeedge.firmware.console.auth import Authenticator, LockoutPolicy
from storeedge.firmware.console.exc import SecretError
from storeedge.firmware.console.secret import parse_logins, read_logins, write_user


def test_users_file_keeps_other_users_and_refuses_bad_names(tmp_path):
    path = tmp_path / "console.secret"
    write_user(path, "alice", "alice-secret-1", **CHEAP)
    write_user(path, "bob", "bob-secret-22", **CHEAP)
    write_user(path, "alice", "alice-secret-2", **CHEAP)      # alice changes hers
    logins = read_logins(path)
    assert sorted(logins.users) == ["alice", "bob"] and logins.shared is None
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert "alice-secret" not in path.read_text()
    with pytest.raises(SecretError, match="user name 'Bad Name'"):
        write_user(path, "Bad Name", "whatever-123", **CHEAP)
    with pytest.raises(SecretError, match="line 1: expected 'name:scrypt"):
        parse_logins("alice scrypt$1$2\n")


def test_unknown_user_and_wrong_secret_get_the_same_answer(tmp_path, clock):
    path = tmp_path / "console.secret"
    write_user(path, "alice", "alice-secret-1", **CHEAP)
    auth = Authenticator(read_logins(path), clock, LockoutPolicy(max_failures=5))
    assert auth.attempt("alice-secret-1", "alice").outcome.value == "ok"
    assert auth.attempt("alice-secret-1", "mallory").outcome.value == "bad"
    assert auth.attempt("wrong-secret-1", "alice").outcome.value == "bad"


def test_named_login_records_commits_by_name(make_console, target, tmp_path, config_path):
    path = tmp_path / "console.secret"
    write_user(path, "alice", "alice-secret-1", **CHEAP)
    write_user(path, "bob", "bob-secret-22", **CHEAP)
    console = make_console(target)
    console.auth = Authenticator(read_logins(path), console.ctx.clock)
    t = Terminal(console)
    assert "Login: " in t.type(b"\r")
    assert "wrong login or secret" in t.type(b"bob\ralice-secret-1\r")
    assert "Password: " in t.type(b"alice\r")
    out = t.type(b"alice-secret-1\r")
    assert "logged in as alice" in out
    t.run("set bench.threshold_c -22")
    t.run("commit")
    t.run("logout")
    t.type(b"bob\rbob-secret-22\r")
    t.run("set bench.mode defrost")
    t.run("commit confirmed 5")
    history = t.run("history")
    assert " alice" in history and " bob" in history
    commits = [e.body for e in console.ctx.service.recent_events(50, "console.commit")]
    assert sorted(b["by"] for b in commits) == ["alice", "bob"]
    assert "threshold_c: -22" in open(config_path).read()


def test_cli_users_on_a_pty(tmp_path):
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(yaml.safe_dump({"device": {"id": "gw-1", "kind": "gateway", "store": "s0042"},
                                   "relay": {"db_path": str(tmp_path / "gateway.db")},
                                   "security": {"insecure": True}}))
    run = [sys.executable, "-m", "storeedge.cli", "console", "--config", str(cfg)]
    for user, secret in (("alice", b"alice-secret-1"), ("bob", b"bob-secret-22")):
        res = subprocess.run(run + ["--set-secret", "--user", user],
                             input=secret + b"\n" + secret + b"\n", capture_output=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        assert f"login '{user}' stored".encode() in res.stdout
    master, slave = os.openpty()
    proc = subprocess.Popen(run + ["--port", os.ttyname(slave), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    term = PtyTerminal(master)
    try:
        term.send(b"\r")
        term.expect("Login: ")
        term.send(b"bob\r")
        term.expect("Password: ")
        term.send(b"bob-secret-22\r")
        term.expect("logged in as bob")
        term.send(b"set link.keepalive_s 45\rcommit\rhistory\r")
        screen = term.expect("gw-1> ") + term.expect("gw-1> ") + term.expect("gw-1> ")
        assert "committed version 2" in screen and "   bob" in screen
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0, err.decode()
    assert yaml.safe_load(cfg.read_text())["link"]["keepalive_s"] == 45
