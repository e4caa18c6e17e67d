"""``storeedge store-server user add`` and the first-start hint."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from helpers.webkit import PASSWORD

from storeedge.config import config_from_dict
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


def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 (PEM files) and its path."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "store page")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "page.crt", tmp_path / "page.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_over_tls_the_session_cookie_is_secure(tmp_path, capsys):
    import ssl
    import urllib.parse

    crt, pem = self_signed(tmp_path)
    cfg = config_from_dict({"server": {"db": f"sqlite:///{tmp_path}/store.db"},
                            "web": {"enabled": True, "port": 0, "tls_cert": str(crt),
                                    "tls_key": str(pem)},
                            "security": {"insecure": True}}, StoreServerConfig)
    web = start_web(cfg, None)
    try:
        assert web.url.startswith("https://127.0.0.1:")
        web.ctx.auth.add_user("mara", "manager", PASSWORD, by="test")
        tls = ssl.create_default_context(cafile=str(crt))
        form = urllib.parse.urlencode({"name": "mara", "password": PASSWORD}).encode()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls),
                                             NoRedirect())
        try:
            opener.open(web.url + "/login", data=form, timeout=10)
            raise AssertionError("a login answers with a redirect")
        except urllib.error.HTTPError as exc:
            cookie, code = exc.headers["set-cookie"].lower(), exc.code
        assert code == 303
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        web.close()
