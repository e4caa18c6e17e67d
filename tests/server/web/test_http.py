"""The store page over HTTP (Starlette's test client, real SQLite): logins, roles, CSRF,
lockout, audit, bad input.  Browser tests are in test_browser.py."""
from __future__ import annotations

import time

import pytest
from helpers.webkit import PASSWORD, csrf_of, escalation, login, put_events, refusal

from storeedge.server.web.auth import token_hash
from storeedge.server.web.exc import FormError


def audit_actions(ctx) -> list[tuple[str, str]]:
    return [(name, action) for _ts, name, action, _t, _d in ctx.store.audit_log()]


def test_wrong_password_is_refused_and_no_session_is_opened(page):
    ctx, client = page
    resp = login(client, "mara", "not the password")
    assert resp.status_code == 401 and refusal(resp.text) == "wrong name or password"
    assert ctx.store.query("SELECT COUNT(*) FROM web_sessions")[0][0] == 0
    resp = login(client, "nobody", PASSWORD)             # unknown name: the same answer
    assert resp.status_code == 401 and refusal(resp.text) == "wrong name or password"
    assert client.get("/alerts").url.path == "/login"


def test_lockout_after_failed_logins_refuses_even_the_right_password(page):
    ctx, client = page
    for _ in range(4):
        assert login(client, "ali", "guess").status_code == 401
    resp = login(client, "ali", "guess")
    assert resp.status_code == 429 and "account locked after 5 failed logins" in refusal(resp.text)
    resp = login(client, "ali", PASSWORD)
    assert resp.status_code == 429 and "locked" in refusal(resp.text)
    assert audit_actions(ctx).count(("ali", "login.failed")) == 5
    ctx.store.write([("UPDATE web_users SET locked_until=0 WHERE name='ali'", ())])
    assert login(client, "ali", PASSWORD).url.path == "/alerts"       # lock over: in again


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(page):
    ctx, client = page
    resp = client.post("/login", data={"name": "mara", "password": PASSWORD},
                       follow_redirects=False)
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "content-security-policy" in resp.headers
    html = client.get("/alerts").text
    client.post("/logout", data={"csrf": csrf_of(html)})
    assert client.get("/alerts").url.path == "/login"
    assert ("mara", "logout") in audit_actions(ctx)


def test_expired_session_is_sent_to_login_with_a_message(page):
    ctx, client = page
    login(client, "mara")
    html = client.get("/alerts").text
    ctx.store.write([("UPDATE web_sessions SET expires=?", (time.time() - 1,))])
    resp = client.get("/alerts")
    assert resp.url.path == "/login" and "Your session expired" in resp.text
    resp = client.post("/users", data={"csrf": csrf_of(html), "name": "eve",
                                       "role": "manager", "password": PASSWORD})
    assert resp.status_code == 401 and "session expired" in refusal(resp.text)
    assert ctx.store.user("eve") is None


def test_post_without_or_with_a_wrong_csrf_token_is_refused_and_nothing_stored(page):
    ctx, client = page
    login(client, "mara")
    (seq,) = put_events(ctx.store.db, "lane-1", "checkout", [("checkout.escalate",
                                                              escalation())])
    for token in (None, "forged-token"):
        data = {"alert": f"lane-1:{seq}", "outcome": "scanned"}
        if token:
            data["csrf"] = token
        resp = client.post("/alerts/resolve", data=data)
        assert resp.status_code == 403 and "CSRF" in refusal(resp.text)
    assert ctx.store.query("SELECT COUNT(*) FROM web_alert_actions")[0][0] == 0


def test_resolving_an_alert_is_stored_with_the_name_and_audited(page):
    ctx, client = page
    login(client, "ali")
    (seq,) = put_events(ctx.store.db, "lane-1", "checkout", [("checkout.escalate",
                                                              escalation())])
    html = client.get("/alerts").text
    assert "Escalation: missed scan" in html and "4006381333931" in html
    resp = client.post("/alerts/resolve", data={"csrf": csrf_of(html), "alert": f"lane-1:{seq}",
                                                "outcome": "no_item", "note": "bag was empty"})
    assert resp.status_code == 200 and "resolved: no item by ali: bag was empty" in resp.text
    assert ctx.store.query("SELECT outcome, note, by_name FROM web_alert_actions") == \
        [("no_item", "bag was empty", "ali")]
    assert ("ali", "alert.resolve") in audit_actions(ctx)
    again = client.post("/alerts/resolve", data={"csrf": csrf_of(html), "alert":
                                                 f"lane-1:{seq}", "outcome": "false_alarm"})
    assert again.status_code == 400 and refusal(again.text) == "alert: already resolved"


def test_an_associate_cannot_issue_codes_or_open_manager_and_technician_pages(page):
    ctx, client = page
    login(client, "ali")
    html = client.get("/alerts").text
    assert 'href="/devices"' not in html and 'href="/door"' not in html
    for path in ("/devices", "/door", "/users", "/audit", "/freezers", "/figures"):
        resp = client.get(path)
        assert resp.status_code == 403, path
        assert refusal(resp.text) == "an associate may not open this page"
    resp = client.post("/door/issue", data={"csrf": csrf_of(html), "vendor": "x"})
    assert resp.status_code == 403
    # a forged role field when adding a person: refused, nothing stored
    resp = client.post("/users", data={"csrf": csrf_of(html), "name": "eve", "role": "manager",
                                       "password": PASSWORD})
    assert resp.status_code == 403 and ctx.store.user("eve") is None
    assert ("ali", "denied") in audit_actions(ctx)


def test_a_manager_cannot_create_a_role_that_does_not_exist(page):
    ctx, client = page
    login(client, "mara")
    html = client.get("/users").text
    resp = client.post("/users", data={"csrf": csrf_of(html), "name": "eve", "role": "admin",
                                       "password": PASSWORD})
    assert resp.status_code == 400
    assert refusal(resp.text) == "role: must be one of associate, manager, technician"
    assert ctx.store.user("eve") is None
    resp = client.post("/users", data={"csrf": csrf_of(html), "name": "eve", "role": "technician",
                                       "password": PASSWORD})
    assert resp.status_code == 200 and ctx.store.user("eve").role == "technician"


def test_a_forged_session_cookie_is_not_a_session(page):
    ctx, client = page
    client.cookies.set("se_session", "A" * 43)
    assert client.get("/devices").url.path == "/login"
    client.cookies.clear()
    login(client, "ali")
    token = ctx.store.query("SELECT token FROM web_sessions")[0][0]
    real = client.cookies.get("se_session")
    assert token == token_hash(real)                 # only the hash is stored ...
    client.cookies.clear()
    client.cookies.set("se_session", token, domain="testserver.local")   # the hash: no session
    assert client.get("/alerts").url.path == "/login"


def test_sql_and_html_in_text_fields(page):
    ctx, client = page
    login(client, "mara")
    seqs = put_events(ctx.store.db, "lane-1", "checkout",
                      [("checkout.escalate", escalation(pos_line="<b>EAN 1</b>"))] * 2)
    html = client.get("/alerts").text
    assert "&lt;b&gt;EAN 1&lt;/b&gt;" in html and "<b>EAN 1</b>" not in html  # shown escaped
    token = csrf_of(html)
    sql = "x'); DELETE FROM events; --"
    resp = client.post("/alerts/resolve", data={"csrf": token, "alert": f"lane-1:{seqs[0]}",
                                                "outcome": "scanned", "note": sql})
    assert resp.status_code == 200
    assert ctx.store.query("SELECT note FROM web_alert_actions") == [(sql,)]
    assert ctx.store.query("SELECT COUNT(*) FROM events")[0][0] == 2
    refused = {
        "/alerts/resolve": {"alert": f"lane-1:{seqs[1]}", "outcome": "scanned",
                            "note": "<script>alert(1)</script>"},
        "/users": {"name": "<b>eve</b>", "role": "associate", "password": PASSWORD},
    }
    for path, data in refused.items():
        resp = client.post(path, data={"csrf": token, **data})
        assert resp.status_code == 400, path
        assert "not allowed" in refusal(resp.text), path
    resp = client.post("/alerts/resolve", data={"csrf": token, "alert": "lane-1:1 OR 1=1",
                                                "outcome": "scanned"})
    assert resp.status_code == 400 and refusal(resp.text) == "alert: not an alert id"
    assert ctx.store.query("SELECT COUNT(*) FROM web_alert_actions")[0][0] == 1
    assert ctx.store.user("<b>eve</b>") is None


def test_huge_upload_is_refused_before_it_is_read(page):
    ctx, client = page
    login(client, "mara")
    token = csrf_of(client.get("/users").text)
    resp = client.post("/users", data={"csrf": token, "name": "eve", "role": "associate",
                                       "password": "p" * 200_000})
    assert resp.status_code == 413 and "larger than 65536 bytes" in resp.text
    resp = client.post("/users", files={"upload": ("big.bin", b"\0" * 300_000)},
                       data={"csrf": token})
    assert resp.status_code == 413
    assert ctx.store.user("eve") is None


def test_live_stream_sends_new_alerts_and_device_problems_as_cards(page):
    ctx, client = page
    login(client, "ali")
    (seq,) = put_events(ctx.store.db, "lane-1", "checkout", [("checkout.escalate",
                                                              escalation())])
    with ctx.store.db.lock:
        txn = ctx.store.db.transactions()
        txn.begin()
        ctx.store.db.record_gap("lane-1", 7, 9, "hole", time.time())
        txn.commit()
    got = []
    with client.stream("GET", "/alerts/stream?after=0") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                got.append(line)
            if len(got) == 2:
                ctx.stopping.set()               # ends the stream at its next poll
    assert any(f'id="alert-lane-1-{seq}"' in d and "Escalation: missed scan" in d for d in got)
    assert any('id="alert-gap-lane-1-7"' in d and "Events 7..9 missing" in d for d in got)


def test_live_stream_needs_a_session(page):
    _ctx, client = page
    resp = client.get("/alerts/stream")
    assert resp.status_code == 401 and refusal(resp.text) == "log in first"


FREEZER_ALARM = {"alarm_id": "top-h-1", "action": "raised", "kind": "temperature",
                 "probe": "top", "unit": "ice1", "condition": "H", "severity": "warning",
                 "escalation": 0, "notify": "store", "raised_at": "x", "detail": "warm",
                 "value_c": -14.0, "limit_c": -15.0}


def test_an_ack_that_cannot_be_sent_is_refused_and_nothing_is_stored(page):
    ctx, client = page                       # this page has no broker link
    login(client, "ali")
    (seq,) = put_events(ctx.store.db, "fz-1", "freezer", [("freezer.alarm", FREEZER_ALARM)])
    html = client.get("/alerts").text
    resp = client.post("/alerts/ack", data={"csrf": csrf_of(html), "alert": f"fz-1:{seq}",
                                            "action": "moved stock", "initials": "AL"})
    assert resp.status_code == 400
    assert refusal(resp.text) == "commands are disabled: the page has no link to the store broker"
    assert ctx.store.query("SELECT COUNT(*) FROM web_alert_actions")[0][0] == 0
    assert ("ali", "freezer.ack") not in audit_actions(ctx)
    bad = client.post("/alerts/ack", data={"csrf": csrf_of(html), "alert": f"fz-1:{seq}",
                                           "action": "moved stock", "initials": "A1; DROP"})
    assert bad.status_code == 400 and refusal(bad.text).startswith("initials: 1-8 letters")


def test_a_refused_ack_reopens_the_alarm_with_the_device_reason(page):
    ctx, client = page
    login(client, "ali")
    (seq,) = put_events(ctx.store.db, "fz-1", "freezer", [("freezer.alarm", FREEZER_ALARM)])
    ctx.store.write([("INSERT INTO web_alert_actions (dev, seq, outcome, note, by_name, ts, "
                      "cmd_id) VALUES (?,?,?,?,?,?,?)",
                      ("fz-1", seq, "ack_sent", "moved stock (AL)", "ali", time.time(), "c-1"))])
    assert "Sent to the device, waiting" in client.get("/alerts").text
    put_events(ctx.store.db, "fz-1", "freezer", [("device.command", {
        "name": "ack", "id": "c-1", "by": "AL", "ok": False, "error": "alarm already acked",
        "role": "associate"})])
    html = client.get("/alerts").text
    assert "the device refused the acknowledgement sent by ali: alarm already acked" in html
    assert 'action="/alerts/ack"' in html                     # can be acknowledged again


def test_keyframe_is_served_as_a_jpeg_outside_the_page(page):
    import base64
    import io

    from PIL import Image

    ctx, client = page
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="JPEG")
    body = escalation()
    body["evidence"]["keyframe_jpeg"] = base64.b64encode(buf.getvalue()).decode()
    seq, other = put_events(ctx.store.db, "lane-1", "checkout",
                            [("checkout.escalate", body), ("checkout.escalate", escalation())])
    assert client.get(f"/alerts/keyframe/lane-1/{seq}.jpg").status_code == 401   # no session
    login(client, "ali")
    html = client.get("/alerts").text
    assert f'src="/alerts/keyframe/lane-1/{seq}.jpg"' in html and "base64" not in html
    resp = client.get(f"/alerts/keyframe/lane-1/{seq}.jpg")
    assert resp.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(resp.content)).size == (40, 30)
    resp = client.get(f"/alerts/keyframe/lane-1/{other}.jpg")
    assert resp.status_code == 400 and refusal(resp.text) == "keyframe: this alert has no keyframe"


def test_a_resolution_by_someone_else_updates_the_card_live(page):
    ctx, client = page
    login(client, "ali")
    (seq,) = put_events(ctx.store.db, "lane-1", "checkout", [("checkout.escalate",
                                                              escalation())])
    got = []
    with client.stream("GET", "/alerts/stream?after=0") as resp:
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            got.append(line)
            if len(got) == 1:                    # mara resolves it on her handheld
                ctx.store.write([("INSERT INTO web_alert_actions (dev, seq, outcome, note, "
                                  "by_name, ts) VALUES (?,?,?,?,?,?)",
                                  ("lane-1", seq, "scanned", "", "mara", time.time()))])
            if "resolved: item scanned by mara" in line:
                ctx.stopping.set()
    assert 'action="/alerts/resolve"' in got[0]
    assert f'id="alert-lane-1-{seq}"' in got[-1] and 'action="/alerts/resolve"' not in got[-1]


def test_a_manager_resets_a_password_and_removes_an_account_but_not_the_last_manager(page):
    ctx, client = page
    for _ in range(5):
        login(client, "ali", "guess")                           # ali is locked out
    login(client, "mara")
    token = csrf_of(client.get("/users").text)
    resp = client.post("/users/password", data={"csrf": token, "name": "ali",
                                                "password": "short"})
    assert resp.status_code == 400 and refusal(resp.text) == "password: 8 to 256 characters"
    resp = client.post("/users/password", data={"csrf": token, "name": "ali",
                                                "password": "a new long one"})
    assert resp.status_code == 200 and "Password set" in resp.text
    assert ctx.store.user("ali").locked_until == 0
    resp = client.post("/users/remove", data={"csrf": token, "name": "mara"})
    assert refusal(resp.text) == "name: you cannot remove your own account"
    resp = client.post("/users/remove", data={"csrf": token, "name": "tess"})
    assert resp.status_code == 200 and ctx.store.user("tess") is None
    ctx.store.write([("UPDATE web_users SET role='manager' WHERE name='ali'", ())])
    resp = client.post("/users/remove", data={"csrf": token, "name": "ali"})
    assert resp.status_code == 200 and ctx.store.user("ali") is None
    assert [a for _t, n, a, _g, _d in ctx.store.audit_log() if n == "mara"][:3] == \
        ["user.remove", "user.remove", "user.password"]
    with pytest.raises(FormError, match="^name: the last manager cannot be removed$"):
        ctx.auth.remove_user("mara", by="someone")
    assert login(client, "ali", "a new long one").status_code == 401     # removed: gone
