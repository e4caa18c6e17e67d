"""A whole session, driven keystroke by keystroke: login, lockout, edits, commits, rollbacks."""
from __future__ import annotations

import json

import pytest
import yaml
from helpers.console_rig import SECRET, BenchConfig, Terminal, events_of, make_target

from storeedge.config import load_config
from storeedge.exc import ConfigError


def bodies(service, type_):
    return [e.body for e in events_of(service, type_) if e.type == type_]


def live(config_path):
    return yaml.safe_load(open(config_path))


# ----------------------------------------------------------------------------- login


def test_login_is_an_event_and_secret_is_never_echoed(make_console, target, service):
    t = Terminal(make_console(target))
    screen = t.login()
    assert SECRET not in t.out.decode()
    assert "logged in" in screen and screen.endswith("fz-1> ")
    assert bodies(service, "console.login") == [{"port": "loop://"}]


def test_bad_secret_lockout_with_growing_back_off(make_console, target, service, clock):
    t = Terminal(make_console(target))
    assert "wrong secret" in t.login("nope-1")
    assert "wrong secret" in t.login("nope-2")
    assert "locked out for 30 s" in t.login("nope-3")
    assert "locked out: try again in 30 s" in t.login(SECRET)     # right secret, not checked
    clock.advance(30)
    assert "locked out for 60 s" in t.login("nope-4")
    clock.advance(60)
    assert "logged in" in t.login()
    failed = bodies(service, "console.login_failed")
    assert [(b["failures"], b["locked_for_s"], b["refused"]) for b in failed] == [
        (1, 0, False), (2, 0, False), (3, 30, False), (3, 30, True), (4, 60, False)]
    assert all(SECRET not in json.dumps(b) for b in failed)
    assert len(bodies(service, "console.login")) == 1


def test_typing_into_a_lockout_is_one_event_not_a_flood(make_console, target, service, clock):
    t = Terminal(make_console(target))
    for i in range(3):
        t.login(f"bad-{i}")
    for _ in range(20):
        assert "locked out: try again" in t.login()
    refused = [b for b in bodies(service, "console.login_failed") if b["refused"]]
    assert len(refused) == 1
    clock.advance(30)
    t.login("bad-again")                          # new lockout (60 s) ...
    t.login()
    t.login()                                     # ... reported once more
    assert len([b for b in bodies(service, "console.login_failed") if b["refused"]]) == 2


def test_half_typed_secret_is_forgotten_when_idle(make_console, target, clock):
    t = Terminal(make_console(target))
    t.type("bench-sec")
    clock.advance(600)
    t.session.tick()
    assert "wrong secret" in t.login("ret-42")        # "bench-sec" was dropped


def test_failed_automatic_rollback_is_retried(term, clock, config_path, monkeypatch):
    term.run("set bench.threshold_c -30")
    term.run("commit confirmed 1")
    store = term.session.ctx.manager.store
    real = store.commit
    monkeypatch.setattr(store, "commit", lambda *a, **k: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    clock.advance(60)
    term.session.tick()
    assert "automatic rollback FAILED" in term.out.decode()
    assert live(config_path)["bench"]["threshold_c"] == -30.0
    monkeypatch.setattr(store, "commit", real)          # disk has room again
    term.session.tick()
    assert live(config_path)["bench"]["threshold_c"] == -30.0   # not before the retry time
    clock.advance(30)
    term.session.tick()
    assert live(config_path)["bench"]["threshold_c"] == -20.0


def test_lockout_survives_a_new_session_on_the_same_console(make_console, target, clock):
    console = make_console(target)
    t1 = Terminal(console)
    for i in range(3):
        t1.login(f"bad-{i}")
    t2 = Terminal(console)                       # unplug/replug the cable
    assert "locked out" in t2.login()


def test_ctrl_c_and_empty_line_at_password_prompt_just_reprompt(make_console, target, service):
    t = Terminal(make_console(target))
    assert t.type(b"abc\x03").endswith("Password: ")
    assert t.type(b"\r").endswith("Password: ")
    assert bodies(service, "console.login_failed") == []


def test_idle_timeout_logs_out(term, clock, service):
    clock.advance(599)
    term.session.tick()
    assert "fz-1> status" not in term.out.decode() and term.session.state.value == "shell"
    clock.advance(1)
    term.session.tick()
    assert "idle for 600 s: logged out" in term.out.decode()
    assert term.run("status").endswith("Password: ")          # 'status' was taken as a secret
    assert bodies(service, "console.logout")[-1]["reason"] == "idle timeout"


def test_ctrl_d_and_logout(term, service):
    assert term.type(b"\x04").endswith("Password: ")
    term.login()
    assert "bye" in term.run("logout")
    assert [b["reason"] for b in bodies(service, "console.logout")] == ["ctrl-d", "logout"]


# ----------------------------------------------------------------------------- config


def test_set_diff_commit(term, config_path, service):
    assert "candidate: bench.threshold_c = -25.0" in term.run("set bench.threshold_c -25")
    assert term.out.decode().endswith("fz-1*> ")                 # prompt marks a dirty candidate
    assert "~ bench.threshold_c: -20.0 -> -25.0" in term.run("diff")
    assert live(config_path)["bench"]["threshold_c"] == -20.0   # not live before commit
    screen = term.run("commit")
    assert "committed version 2 (was 1)" in screen
    assert live(config_path)["bench"]["threshold_c"] == -25.0
    assert load_config(config_path, BenchConfig).bench.threshold_c == -25.0
    [event] = bodies(service, "console.commit")
    assert event["version"] == 2 and event["changes"] == [
        {"key": "bench.threshold_c", "old": "-20.0", "new": "-25.0"}]
    assert "nothing to commit" in term.run("commit")


def test_secrets_are_masked_in_diff_show_and_event(term, service, config_path):
    term.run("set link.password hunter2-secret")
    term.run("set bench.api_token tok-123456")
    screen = term.run("diff") + term.run("show config link") + term.run("commit")
    assert "hunter2" not in screen and "tok-123456" not in screen and "********" in screen
    event = json.dumps(bodies(service, "console.commit"))
    assert "hunter2" not in event and "tok-123456" not in event
    assert live(config_path)["link"]["password"] == "hunter2-secret"   # stored for the app


@pytest.mark.parametrize("line,expect", [
    ("set bench.threshold_c 50", "bench.threshold_c: 50.0 is above the maximum 10 degC"
                                 " (allowed -40..10 degC)"),
    ("set bench.threshold_c cold", "must be a number, got str 'cold' (allowed: -40..10 degC)"),
    ("set bench.mode party", "'party' is not one of: normal, defrost"),
    ("set bench.enabled maybe", "must be true or false"),
    ("set bench.probes.p1.rom 29-zz", "does not match the pattern"),
    ("set bench.nosuch 1", "bench.nosuch: unknown key in bench (allowed: threshold_c, enabled,"),
    ("set link.backoff_max_s 0.1", "link.backoff_max_s: 0.1 is below the minimum 1 s"),
    ("set link.backoff_min_s 50", "link.backoff_max_s: 30.0 is below backoff_min_s (50.0)"),
    ("set bench 3", "bench: is a section; set one of its keys"),
    ("set device.id.x 3", "device.id has no sub-keys"),
])
def test_invalid_values_are_refused_and_change_nothing(term, config_path, line, expect):
    before = open(config_path).read()
    screen = term.run(line)
    assert "error: " in screen
    assert expect in screen.replace("\r\n    ", " ").replace("\r\n", " ")
    assert "(no changes)" in term.run("diff")
    assert open(config_path).read() == before
    assert term.out.decode().endswith("fz-1> ")


def test_refusal_matches_validate_config(term, tmp_path):
    """The console refuses exactly what --validate-config refuses, with the same reason."""
    screen = term.run("set link.keepalive_s 2")
    bad = tmp_path / "bad.yaml"
    bad.write_text("link:\n  keepalive_s: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad, BenchConfig)
    assert err.value.reason in screen.replace("\r\n    ", " ")


def test_unset_restores_default_and_removes_map_entries(term, config_path):
    term.run("set bench.mode defrost")
    term.run("commit")
    assert "unset, its default applies" in term.run("unset bench.mode")
    assert "is not set in the config file" in term.run("unset bench.enabled")
    term.run("unset bench.probes.p1")
    diff = term.run("diff")
    assert "~ bench.mode: defrost -> normal" in diff and "- bench.probes.p1.rom" in diff
    term.run("commit")
    assert not live(config_path)["bench"].get("probes") and "mode" not in live(config_path)["bench"]


def test_lists_and_new_map_entries(term, config_path):
    term.run("set bench.tags [dairy, aisle-4]")
    term.run("set bench.probes.p2.rom 28-00000000beef")
    term.run("commit")
    cfg = load_config(config_path, BenchConfig)
    assert cfg.bench.tags == ["dairy", "aisle-4"] and cfg.bench.probes["p2"].interval_s == 60.0


def test_commit_confirmed_expires_into_a_rollback(term, clock, config_path, service, target):
    term.run("set bench.threshold_c -30")
    screen = term.run("commit confirmed 2")
    assert "rolls back to version 1 in 2 min unless 'confirm'" in screen
    assert live(config_path)["bench"]["threshold_c"] == -30.0
    assert "UNCONFIRMED: rolls back in 120 s" in term.run("status")
    clock.advance(119)
    term.session.tick()
    assert live(config_path)["bench"]["threshold_c"] == -30.0
    clock.advance(1)
    term.session.tick()
    assert "commit not confirmed in time: rolled back" in term.out.decode()
    assert live(config_path)["bench"]["threshold_c"] == -20.0
    commits = bodies(service, "console.commit")
    assert [(c["version"], c["by"]) for c in commits] == [
        (2, "console"), (3, "console:auto-rollback")]
    assert commits[1]["changes"] == [{"key": "bench.threshold_c", "old": "-30.0", "new": "-20.0"}]
    assert commits[0]["confirm_within_s"] == 120
    assert target.commits[-1]["bench"]["threshold_c"] == -20.0      # app reload hook told
    assert "nothing to confirm" in term.run("confirm")


def test_confirm_keeps_the_commit(term, clock, config_path, service):
    term.run("set bench.threshold_c -30")
    term.run("commit confirmed 1")
    assert "version 2 confirmed" in term.run("confirm")
    clock.advance(3600)
    term.session.tick()
    assert live(config_path)["bench"]["threshold_c"] == -30.0
    assert bodies(service, "console.confirm") == [{"version": 2}]


def test_pending_rollback_survives_a_console_restart(term, clock, config_path, make_console,
                                                     target):
    term.run("set bench.threshold_c -30")
    term.run("commit confirmed 5")
    restarted = Terminal(make_console(target))     # new process: state read back from disk
    clock.advance(301)
    restarted.session.tick()
    assert live(config_path)["bench"]["threshold_c"] == -20.0


@pytest.mark.parametrize("minutes", ["0", "61", "five"])
def test_commit_confirmed_bad_minutes(term, config_path, minutes):
    term.run("set bench.threshold_c -30")
    assert "minutes must be" in term.run(f"commit confirmed {minutes}").lower()
    assert live(config_path)["bench"]["threshold_c"] == -20.0


def test_rollback_n_loads_old_version_into_candidate(term, config_path):
    for value in (-21, -22, -23):
        term.run(f"set bench.threshold_c {value}")
        term.run("commit")
    history = term.run("history")
    assert "  0        4  " in history and "  3        1  " in history and "initial" in history
    screen = term.run("rollback 2")
    assert "~ bench.threshold_c: -23.0 -> -21.0" in screen and "'commit' to apply" in screen
    assert live(config_path)["bench"]["threshold_c"] == -23.0
    term.run("commit")
    assert live(config_path)["bench"]["threshold_c"] == -21.0
    assert "rollback N must be 0..4" in term.run("rollback 9")
    term.run("set bench.threshold_c -5")
    assert "candidate reset" in term.run("rollback")
    assert "(no changes)" in term.run("diff")


def test_logout_discards_uncommitted_edits(term, config_path):
    term.run("set bench.threshold_c -30")
    assert "uncommitted candidate changes discarded" in term.type(b"\x04")
    term.login()
    assert "(no changes)" in term.run("diff")


def test_events_command(term):
    term.run("set bench.threshold_c -30")
    term.run("commit")
    screen = term.run("events 5 console.commit")
    assert "console.commit" in screen and "console.login" not in screen
    assert "console.login" in term.run("events")
    assert "(no events of type door.)" in term.run("events door.")
    assert "events N must be 1..500" in term.run("events 0")


def test_status_and_network(term):
    screen = term.run("status")
    assert "device: fz-1 (freezer) store s0042" in screen and "config: version 1" in screen
    assert "service link: disconnected" in screen and "door contact: closed" in screen
    net = term.run("network")
    assert "127.0.0.1" in net and "broker: mqtt://127.0.0.1:1883" in net
    assert "link: disconnected" in net


# ----------------------------------------------------------------------------- bad input


def test_bad_input_keeps_session_usable(term, config_path):
    before = open(config_path).read()
    assert "line too long" in term.type(b"set bench.threshold_c " + b"9" * 400 + b"\r")
    assert "non-printable" in term.type(b"\x00\x01\xff\xfe\x80commit\r")
    assert "unknown command 'frobnicate'" in term.run("frobnicate")
    assert "ambiguous command" in term.run("co")
    assert "No closing quotation" in term.run("set bench.mode 'defrost")
    assert "usage: set KEY VALUE" in term.run("set")
    garbage = bytes(b for b in range(256) if b not in (0x03, 0x04)) * 3   # not Ctrl-C/Ctrl-D
    term.type(garbage + b"\r")
    assert "(no changes)" in term.run("diff")
    assert open(config_path).read() == before
    assert "committed version 2" in (term.run("set bench.mode defrost") + term.run("commit"))
    assert term.type(b"\x00garbage\x04").endswith("Password: ")   # Ctrl-D still logs out


def test_output_is_ascii_and_fits_80_columns(term):
    for line in ("help", "status", "show config", "history", "events 50", "network",
                 "set bench.tags [" + ", ".join(["a-long-tag-name"] * 12) + "]",
                 "show config bench.tags", "help commit confirmed"):
        term.run(line)
    text = bytes(term.out)
    assert all(b < 0x80 for b in text)
    printed = [ln for ln in text.split(b"\r\n") if not ln.startswith((b"fz-1> ", b"fz-1*> "))]
    assert max(len(line) for line in printed) <= 80          # echo of typed input excluded
    assert b"a-long-tag-name, a-long-tag-name" in text


def test_help_for_one_command(term):
    assert "commit, roll back after MINUTES" in term.run("help comm conf")
    assert "unknown command" in term.run("help nothing")


# ----------------------------------------------------------------------------- device kinds


def kind_term(make_console, factory, kind, **rig):
    target = make_target(kind, factory, **rig)
    t = Terminal(make_console(target))
    t.login()
    return t, target


def test_door_relay_and_sensor_tests_and_reset_lockout(make_console, factory, service):
    t, target = kind_term(make_console, factory, "dock_door")
    screen = t.run("test relay")
    assert "relay on : contact reads closed (ok)" in screen and "relay test passed" in screen
    factory.pin(22).drive_low()                   # door contact closes (Button, pull-up)
    assert "door contact (GPIO22): closed" in t.run("test sensors")
    target.lockout = True
    assert "door lockout cleared" in t.run("reset lockout") and not target.lockout
    assert "nothing to reset" in t.run("reset lockout")
    assert "'ack' is not available on a dock_door" in t.run("ack high note")
    assert "'test camera' is not available" in t.run("test camera")
    results = bodies(service, "console.selftest")
    assert [(r["test"], r["passed"]) for r in results] == [("relay", True), ("sensors", True)]


def test_broken_relay_fails_its_test(make_console, factory, service):
    t, _ = kind_term(make_console, factory, "dock_door", relay_wired=False)
    screen = t.run("test relay")
    assert "relay on : contact reads open (FAIL)" in screen and "relay test FAILED" in screen
    assert bodies(service, "console.selftest")[0]["passed"] is False


def test_freezer_ack(make_console, factory):
    t, target = kind_term(make_console, factory, "freezer")
    target.alarms["high-temp"] = ""
    assert "ACTIVE" in t.run("status")
    assert "alarm high-temp acknowledged" in t.run("ack high-temp door was left open")
    assert target.alarms["high-temp"] == "door was left open"
    assert "no alarm named 'low'" in t.run("ack low x")
    assert "'reset lockout' is not available on a freezer" in t.run("reset lockout")


def test_checkout_scanner_and_camera(make_console, factory):
    t, _ = kind_term(make_console, factory, "checkout")
    assert "scanner read '4006381333931'" in t.run("test scanner")
    screen = t.run("test camera")
    assert "camera synthetic: 10 frames" in screen and "camera test passed" in screen
    assert "'test relay' is not available on a checkout" in t.run("test relay")


def test_show_one_key_explains_it(term):
    screen = term.run("show config bench.threshold_c")
    assert "bench.threshold_c = -20.0" in screen
    assert "allowed: -40..10 degC" in screen and "alarm threshold" in screen


def test_commit_refused_when_live_file_was_edited_behind_the_console(term, config_path):
    with open(config_path, "a") as fh:
        fh.write("log: {level: debug}\n")
    term.run("set bench.mode defrost")
    said = " ".join(term.run("commit").split())      # wrapped at 80 columns: where depends
    assert "was changed outside the console" in said  # on the length of the temp path
    assert live(config_path)["log"] == {"level": "debug"}       # the hand edit is kept


def test_random_bytes_never_break_the_session(term, config_path):
    """Line noise (a loose cable, a wrong baud rate) into a logged-in session: no crash, only
    ASCII out, the live config untouched, and the session still answers afterwards."""
    import random

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    before = open(config_path).read()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.binary(max_size=400))
    def feed(noise):
        term.type(noise.replace(b"\x04", b""))       # Ctrl-D would (correctly) log out
        term.type(b"\x03")                           # what a technician does next: Ctrl-C

    feed()
    rng = random.Random(4)
    term.type(bytes(rng.randrange(256) for _ in range(5000)).replace(b"\x04", b"") + b"\x03")
    assert all(b < 0x80 for b in term.out)
    assert open(config_path).read() == before
    if term.session.state.value != "shell":           # noise may have been typed as a secret
        term.login()
    assert "(no changes)" in term.run("rollback") + term.run("diff")


def test_numbers_in_any_plain_notation(term):
    assert "bench.probes.p1.interval_s = 100.0" in term.run("set bench.probes.p1.interval_s 1e2")
    assert "must be an integer, got float 5.5" in term.run("set link.keepalive_s 5.5")


def test_every_console_event_matches_its_published_schema(term, service, clock, factory):
    """What the gateway and store server check on ingest (common.events.validate_body)."""
    from storeedge.events import validate_body
    term.run("set link.password s3cret-pw")
    term.run("commit confirmed 1")
    clock.advance(60)
    term.session.tick()
    term.run("set bench.mode defrost")
    term.run("commit confirmed 2")
    term.run("confirm")
    term.run("test sensors")
    term.type(b"\x04")
    term.login("wrong")
    events = service.recent_events(100, "console.")
    assert {e.type for e in events} == {"console.login", "console.commit", "console.confirm",
                                        "console.selftest", "console.logout",
                                        "console.login_failed"}
    for env in events:
        validate_body(env.type, env.body)
    assert "s3cret-pw" not in json.dumps([e.body for e in events])
