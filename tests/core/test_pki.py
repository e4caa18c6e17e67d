"""The store PKI (storeedge.pki), its CLI and the broker config generator."""
from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from storeedge.brokerconf import BrokerSpec, acl_text, write_broker_config, write_store_configs
from storeedge.cli import main as storeedge
from storeedge.exc import PKIError, PKINotFound
from storeedge.pki import StorePKI, derive_e2e_key


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def pki(tmp_path) -> StorePKI:
    return StorePKI.init(tmp_path / "pki", "s0042")


def _csr(cn: str, key=None) -> tuple[bytes, object]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
           .sign(key, hashes.SHA256()))
    return req.public_bytes(serialization.Encoding.PEM), key


def test_init_makes_a_ca_and_secrets_readable_only_by_the_owner(pki):
    for secret in ("ca.key", "command.key", "e2e-master.key"):
        assert mode(pki.root / secret) == 0o600, secret
    ca = cert(pki.ca_crt)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert len(pki.e2e_master.read_bytes()) == 32
    crl = x509.load_pem_x509_crl(pki.crl_pem.read_bytes())
    assert crl.is_signature_valid(ca.public_key()) and len(list(crl)) == 0
    with pytest.raises(PKIError, match="already holds"):
        StorePKI.init(pki.root, "s0042")
    with pytest.raises(PKINotFound, match="not a store PKI"):
        StorePKI(pki.root.parent / "elsewhere")


def test_enrol_issues_a_certificate_whose_cn_is_the_device_and_a_bundle(pki):
    e = pki.enrol("fz-1", "freezer")
    files = pki.tls_files("fz-1")
    issued = cert(files.cert)
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fz-1"
    assert issued.serial_number == e.serial
    issued.verify_directly_issued_by(cert(pki.ca_crt))
    key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    assert key.public_key().public_numbers() == issued.public_key().public_numbers()
    bundle = pki.bundle_dir("fz-1")
    assert mode(files.key) == 0o600 and mode(bundle / "e2e.key") == 0o600
    assert (bundle / "command.pub").read_bytes() == pki.command_pub.read_bytes()
    assert (bundle / "ca.crt").read_bytes() == pki.ca_crt.read_bytes()
    assert (bundle / "e2e.key").read_bytes() == derive_e2e_key(
        pki.e2e_master.read_bytes(), "s0042", "fz-1")
    assert [(x.id, x.kind, x.revoked) for x in pki.list()] == [("fz-1", "freezer", False)]


def test_e2e_key_is_hmac_sha256_of_the_documented_label():
    """Checked against an independent HMAC implementation (cryptography's)."""
    master = bytes(range(32))
    mac = hmac.HMAC(master, hashes.SHA256())
    mac.update(b"storeedge-e2e-v1|s0042|door-1")
    assert derive_e2e_key(master, "s0042", "door-1") == mac.finalize()
    assert derive_e2e_key(master, "s0042", "door-2") != derive_e2e_key(master, "s0042", "door-1")
    assert derive_e2e_key(master, "s0043", "door-1") != derive_e2e_key(master, "s0042", "door-1")


def test_enrol_with_a_csr_keeps_the_key_on_the_device(pki):
    csr, key = _csr("door-1")
    pki.enrol("door-1", "dock_door", csr)
    files = pki.tls_files("door-1")
    assert not files.key.exists()
    assert cert(files.cert).public_key().public_numbers() == key.public_key().public_numbers()


def test_bad_csrs_are_refused_with_a_reason(pki):
    with pytest.raises(PKIError, match="common name 'door-2' is not the device id"):
        pki.enrol("door-1", "dock_door", _csr("door-2")[0])
    with pytest.raises(PKIError, match="not a PEM certificate request"):
        pki.enrol("door-1", "dock_door", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    pem, _key = _csr("door-1")
    body = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    body[-5] ^= 0x55                                       # break the signature
    tampered = x509.load_der_x509_csr(bytes(body)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(PKIError, match="invalid signature|not a PEM"):
        pki.enrol("door-1", "dock_door", tampered)
    assert pki.list() == []


def test_ids_kinds_and_double_enrolment_are_checked(pki):
    for bad in ("Door-1", "a/b", "", "x" * 33, "#", "+"):
        with pytest.raises(PKIError, match="device id"):
            pki.enrol(bad, "sim")
    with pytest.raises(PKIError, match="kind 'robot' is unknown"):
        pki.enrol("dev-1", "robot")
    first = pki.enrol("dev-1", "sim")
    with pytest.raises(PKIError, match="already enrolled"):
        pki.enrol("dev-1", "sim")
    pki.revoke("dev-1")
    with pytest.raises(PKIError, match="already revoked"):
        pki.revoke("dev-1")
    second = pki.enrol("dev-1", "sim")                 # allowed once revoked: a new serial
    assert second.serial != first.serial and not pki.get("dev-1").revoked
    assert pki.revoked_serials() == [first.serial]
    with pytest.raises(PKINotFound):
        pki.revoke("ghost")


def test_revoke_lists_the_serial_in_a_crl_signed_by_the_ca(pki):
    keep, gone = pki.enrol("fz-1", "freezer"), pki.enrol("fz-2", "freezer")
    pki.revoke("fz-2")
    crl = x509.load_pem_x509_crl(pki.crl_pem.read_bytes())
    assert crl.is_signature_valid(cert(pki.ca_crt).public_key())
    assert crl.get_revoked_certificate_by_serial_number(gone.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(keep.serial) is None
    assert [e.id for e in pki.active()] == ["fz-1"]


def test_role_lookups(pki):
    pki.enrol("gw-1", "gateway")
    pki.enrol("store-1", "store_server")
    pki.enrol("store-2", "store_server")
    pki.enrol("fz-1", "freezer")
    assert pki.gateway_id() == "gw-1" and pki.gateway_ids() == ["gw-1"]
    assert pki.store_server_ids() == ["store-1", "store-2"]
    pki.revoke("store-2")
    assert pki.store_server_ids() == ["store-1"]


def test_server_certificate_names_the_hosts_and_is_reused(pki):
    files = pki.server_cert("in-store-broker", ("10.0.0.2", "gw.local"))
    san = cert(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"10.0.0.2"}
    assert san.get_values_for_type(x509.DNSName) == ["gw.local"]
    assert mode(files.key) == 0o600
    again = pki.server_cert("in-store-broker", ("10.0.0.2",))
    assert again.cert.read_bytes() == files.cert.read_bytes()


def test_generated_configs_require_certificates_and_an_acl(pki, tmp_path):
    pki.enrol("gw-1", "gateway")
    pki.enrol("store-1", "store_server")
    pki.enrol("fz-1", "freezer")
    pki.enrol("fz-2", "freezer")
    pki.revoke("fz-2")
    in_store, store = write_store_configs(pki, tmp_path / "conf")
    conf = in_store.conf.read_text()
    for line in ("require_certificate true", "use_identity_as_username true",
                 "allow_anonymous false", f"crlfile {pki.crl_pem}", f"acl_file {in_store.acl}"):
        assert line in conf.splitlines(), line
    assert "allow_anonymous true" not in conf and "pattern" not in in_store.acl.read_text()
    acl = in_store.acl.read_text()
    assert "user fz-1\ntopic write se/v1/s0042/freezer/fz-1/evt/#" in acl
    assert "user fz-2" not in acl and "user store-1" not in acl        # revoked; other broker
    assert in_store.grants == {("gw-1", "gateway"), ("fz-1", "freezer")}
    store_acl = store.acl.read_text()
    assert "user fz-1" not in store_acl and "user store-1" in store_acl
    assert "topic write se/v1/s0042/+/+/ack" in acl_text(pki, "store")[0].split("user store-1")[1]
    insecure = write_broker_config(None, BrokerSpec(insecure=True), tmp_path / "plain")
    assert "allow_anonymous true" in insecure.conf.read_text() and insecure.acl is None


def test_cli_init_enrol_list_revoke(tmp_path, capsys):
    d = str(tmp_path / "pki")
    assert storeedge(["pki", "init", "--dir", d, "--store", "s0042"]) == 0
    csr, _key = _csr("door-1")
    (tmp_path / "door.csr").write_bytes(csr)
    assert storeedge(["pki", "enrol", "door-1", "--kind", "dock_door", "--dir", d,
                      "--csr", str(tmp_path / "door.csr")]) == 0
    assert storeedge(["pki", "enrol", "fz-1", "--kind", "freezer", "--dir", d]) == 0
    assert storeedge(["pki", "revoke", "fz-1", "--dir", d]) == 0
    capsys.readouterr()
    assert storeedge(["pki", "list", "--dir", d]) == 0
    table = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in table)
    assert table[2].split()[:3] == ["door-1", "dock_door", "active"]
    assert table[3].split()[:3] == ["fz-1", "freezer", "revoked"]
    assert storeedge(["pki", "enrol", "door-1", "--kind", "dock_door", "--dir", d]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already enrolled" in err and "Traceback" not in err
    assert storeedge(["pki", "list", "--dir", str(tmp_path / "none")]) == 1
    assert "not a store PKI" in capsys.readouterr().err
    out = tmp_path / "out"
    assert storeedge(["pki", "broker-conf", "--dir", d, "--out", str(out), "--role", "store",
                      "--host", "10.0.0.2"]) == 0
    assert "require_certificate true" in (out / "store-broker.conf").read_text()


def test_broker_bundle_for_a_device_runs_in_real_mosquitto(pki, tmp_path):
    """``broker-conf --install-dir``: the folder alone (its own paths) makes a working
    TLS + ACL broker: the enrolled device connects, a foreign-CA one does not."""
    import socket
    import subprocess
    import time

    from storeedge.brokerconf import write_broker_bundle
    from storeedge.brokerproc import free_port, mosquitto_binary
    from helpers.mqtt_peers import Peer
    pki.enrol("gw-1", "gateway")
    pki.enrol("fz-1", "freezer")
    out = tmp_path / "bundle"
    port = free_port()
    files = write_broker_bundle(pki, BrokerSpec(role="in_store", port=port, name="gw-broker"),
                                out, install_dir=str(out))
    assert mode(out / "server.key") == 0o600
    assert str(pki.root) not in files.conf.read_text()          # only the bundle's own files
    if os.geteuid() == 0:          # the image's unit chowns /data/broker to mosquitto instead
        files.conf.write_text(files.conf.read_text() + "user root\n")
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(files.conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        fz = pki.tls_files("fz-1")
        peer = Peer(port, ca=str(fz.ca), cert=str(fz.cert), key=str(fz.key))
        try:
            assert peer.connect() == "Success"
            assert peer.publish("se/v1/s0042/freezer/fz-1/evt/x", {"n": 1}) == "Success"
            assert peer.publish("se/v1/s0042/freezer/fz-2/evt/x", {"n": 1}) == "Not authorized"
        finally:
            peer.close()
        foreign = StorePKI.init(tmp_path / "foreign", "s0042")
        foreign.enrol("fz-1", "freezer")
        ff = foreign.tls_files("fz-1")
        intruder = Peer(port, ca=str(fz.ca), cert=str(ff.cert), key=str(ff.key))
        try:
            assert intruder.connect().startswith("refused")
        finally:
            intruder.close()
    finally:
        proc.terminate()
        proc.wait(10)
