"""The store PKI: a store CA, one client certificate per device (identity = device id), a CRL.

Layout of a PKI folder (``storeedge pki init --dir D --store S``)::

    ca.key  (0600, ECDSA P-256)   ca.crt   crl.pem (re-issued on every revoke)
    enrolment.json                {"store": S, "enrolments": [{id, kind, serial, revoked}],
                                   "revoked_serials": [{serial, at}]}
    command.key (0600, Ed25519; the store server signs commands)   command.pub
    e2e-master.key (0600, 32 random bytes; every device's e2e key is derived from it)
    devices/<id>/   ca.crt  <id>.crt  <id>.key (0600, only when generated here)
                    command.pub  e2e.key (0600)
    brokers/<name>/ server.crt  server.key (0600)   (broker server certificates)

The device id is the certificate's CN; Mosquitto takes it as the username
(``use_identity_as_username``) and the ACL (storeedge.brokerconf) grants topics per id.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from storeedge import apps
from storeedge.config import LiveChoices
from storeedge.exc import PKIError, PKINotFound

KINDS = LiveChoices(lambda: apps.device_kinds() + apps.IDENTITY_KINDS)
"""Kinds an identity may have: every registered app, the store server, ``sim`` and ``console``."""
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
CA_DAYS = 3650          # CA certificate validity, days
CERT_DAYS = 825         # device / broker certificate validity, days
CRL_DAYS = 3650         # CRL next-update horizon, days (an expired CRL would refuse everyone)
# Certificates and CRLs are valid from a day before they are made: a device whose clock is
# behind (a board without an RTC before NTP, a skewed clock) must still accept them.
BACKDATE = dt.timedelta(days=1)


def derive_e2e_key(master: bytes, store: str, dev: str) -> bytes:
    """A device's 32-byte end-to-end event key, derived from the store's master secret.

    ``HMAC-SHA256(master, b"storeedge-e2e-v1|" + store + b"|" + dev)``; the store server
    re-derives it for every device, the device holds only its own (``e2e.key``).
    """
    return hmac.new(master, b"storeedge-e2e-v1|" + store.encode() + b"|" + dev.encode(),
                    hashlib.sha256).digest()


@dataclass
class Enrolment:
    """One enrolled identity: device id (= certificate CN), kind, certificate serial."""

    id: str
    kind: str
    serial: int
    revoked: bool = False


class TLSFiles(NamedTuple):
    """Paths of the files a TLS client (or server) needs: CA, certificate, private key."""

    ca: Path
    cert: Path
    key: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_private(path: Path, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte (atomic rename);
    ``sync=False``: the caller syncs once for a batch (:meth:`StorePKI.enrol_many`)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def check_id(dev: str) -> str:
    """Return ``dev`` if it is a valid device id (``[a-z0-9][a-z0-9_-]{0,31}``), else raise."""
    if not isinstance(dev, str) or not ID_RE.fullmatch(dev):
        raise PKIError(f"device id {dev!r} is invalid: use 1-32 of a-z 0-9 _ - "
                       "(starting with a letter or digit)")
    return dev


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`KINDS`, else raise."""
    if kind not in KINDS:
        raise PKIError(f"kind {kind!r} is unknown: one of {', '.join(KINDS)}")
    return kind


def _public_key_of_csr(csr_pem: bytes, dev: str):
    """The CSR's public key after checking its signature, key type and CN."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise PKIError(f"CSR for {dev} is not a PEM certificate request ({exc})") from None
    if not csr.is_signature_valid:
        raise PKIError(f"CSR for {dev} has an invalid signature")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns and cns[0].value != dev:
        raise PKIError(f"CSR common name {cns[0].value!r} is not the device id {dev!r}")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size >= 256:
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key
    raise PKIError(f"CSR for {dev}: key must be ECDSA P-256/P-384 or RSA >= 2048 bits")


class StorePKI:
    """A store's PKI folder (see the module docstring for its layout).

    Args:
        root: the PKI folder made by :meth:`init`.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        if not (self.root / "ca.crt").is_file() or not (self.root / "enrolment.json").is_file():
            raise PKINotFound(f"{self.root} is not a store PKI (run: storeedge pki init "
                              f"--dir {self.root} --store STORE)")
        self.store: str = self._load()["store"]

    # ------------------------------------------------------------------ files

    @property
    def ca_crt(self) -> Path:
        return self.root / "ca.crt"

    @property
    def crl_pem(self) -> Path:
        return self.root / "crl.pem"

    @property
    def command_key(self) -> Path:
        """Ed25519 command-signing private key (PEM, 0600): the store server's."""
        return self.root / "command.key"

    @property
    def command_pub(self) -> Path:
        return self.root / "command.pub"

    @property
    def e2e_master(self) -> Path:
        """The 32-byte end-to-end master secret (0600): the store server's."""
        return self.root / "e2e-master.key"

    def bundle_dir(self, dev: str) -> Path:
        """The device bundle folder ``devices/<id>/`` (what a technician copies to the device)."""
        return self.root / "devices" / check_id(dev)

    # ------------------------------------------------------------------ creation

    @classmethod
    def init(cls, root: Path, store: str) -> "StorePKI":
        """Create a new PKI for ``store`` in ``root`` (refuses an existing one)."""
        root = Path(root)
        check_id(store)
        if (root / "ca.key").exists():
            raise PKIError(f"{root} already holds a store PKI (ca.key exists)")
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"storeedge {store}"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"storeedge {store} CA")])
        now = _now()
        ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - BACKDATE)
              .not_valid_after(now + dt.timedelta(days=CA_DAYS))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                           False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
        _write_private(root / "ca.key", _key_pem(ca_key))
        _write_public(root / "ca.crt", _cert_pem(ca))
        cmd = ed25519.Ed25519PrivateKey.generate()
        _write_private(root / "command.key", _key_pem(cmd))
        _write_public(root / "command.pub", cmd.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        _write_private(root / "e2e-master.key", os.urandom(32))
        _write_public(root / "enrolment.json", json.dumps(
            {"store": store, "enrolments": [], "revoked_serials": []}, indent=1).encode())
        pki = cls(root)
        pki._write_crl([])
        return pki

    # ------------------------------------------------------------------ state

    def _load(self) -> dict:
        try:
            return json.loads((self.root / "enrolment.json").read_text())
        except (OSError, ValueError) as exc:
            raise PKIError(f"{self.root}/enrolment.json is unreadable: {exc}") from None

    def _save(self, state: dict) -> None:
        _write_public(self.root / "enrolment.json", json.dumps(state, indent=1).encode())

    @contextlib.contextmanager
    def _locked(self):
        """Serialise changes (several processes may enrol into one PKI)."""
        with open(self.root / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield self._load()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _ca(self):
        key = serialization.load_pem_private_key((self.root / "ca.key").read_bytes(), None)
        return key, x509.load_pem_x509_certificate(self.ca_crt.read_bytes())

    # ------------------------------------------------------------------ queries

    def list(self) -> list[Enrolment]:
        """Every enrolment (revoked ones included), in enrolment order."""
        return [Enrolment(**e) for e in self._load()["enrolments"]]

    def get(self, dev: str) -> Enrolment | None:
        """The current enrolment of ``dev`` (None if never enrolled)."""
        return next((e for e in self.list() if e.id == dev), None)

    def active(self) -> list[Enrolment]:
        """Enrolments that are not revoked."""
        return [e for e in self.list() if not e.revoked]

    def ids_of(self, kind: str) -> list[str]:
        """Active ids of one kind."""
        return [e.id for e in self.active() if e.kind == kind]

    def gateway_ids(self) -> list[str]:
        """Active gateway identities (normally one)."""
        return self.ids_of("gateway")

    def gateway_id(self) -> str | None:
        """The store's gateway id (the first active one), None if none is enrolled."""
        ids = self.gateway_ids()
        return ids[0] if ids else None

    def store_server_ids(self) -> list[str]:
        """Active store-server identities."""
        return self.ids_of("store_server")

    def tls_files(self, dev: str) -> TLSFiles:
        """CA, certificate and key paths of an enrolled identity's bundle."""
        d = self.bundle_dir(dev)
        if self.get(dev) is None or not (d / f"{dev}.crt").is_file():
            raise PKINotFound(f"{dev} is not enrolled (storeedge pki enrol {dev} --kind K)")
        return TLSFiles(d / "ca.crt", d / f"{dev}.crt", d / f"{dev}.key")

    # ------------------------------------------------------------------ changes

    def enrol(self, dev: str, kind: str, csr_pem: bytes | None = None) -> Enrolment:
        """Issue ``dev`` a client certificate (CN = dev) and write its bundle folder.

        With ``csr_pem`` the key never leaves the device (no ``<id>.key`` is written);
        without, a P-256 key is generated and written 0600. An id that is enrolled and not
        revoked is refused.
        """
        check_id(dev), check_kind(kind)
        public = _public_key_of_csr(csr_pem, dev) if csr_pem is not None else None
        with self._locked() as state:
            current = next((e for e in state["enrolments"] if e["id"] == dev), None)
            if current is not None and not current["revoked"]:
                raise PKIError(f"{dev} is already enrolled (kind {current['kind']}, serial "
                               f"{current['serial']:x}); revoke it first")
            key = None if public is not None else ec.generate_private_key(ec.SECP256R1())
            cert = self._issue_client(dev, kind, public or key.public_key())
            self._write_bundle(dev, cert, key)
            entry = Enrolment(dev, kind, cert.serial_number)
            state["enrolments"] = [e for e in state["enrolments"] if e["id"] != dev]
            state["enrolments"].append(asdict(entry))
            self._save(state)
        return entry

    def enrol_many(self, items: Iterable[tuple[str, str]]) -> list[Enrolment]:
        """Enrol several ``(dev, kind)`` at once (keys generated here): one lock, one read
        of the CA and of the enrolment list, one sync at the end (``storeedge store plan``).
        Refuses the whole batch, before issuing anything, if one id is already enrolled."""
        items = [(check_id(dev), check_kind(kind)) for dev, kind in items]
        if not items:
            return []
        with self._locked() as state:
            active = {e["id"]: e for e in state["enrolments"] if not e["revoked"]}
            for dev, _kind in items:
                if dev in active:
                    raise PKIError(f"{dev} is already enrolled (kind {active[dev]['kind']}); "
                                   "revoke it first")
            ca_pair, done = self._ca(), []
            for dev, kind in items:
                key = ec.generate_private_key(ec.SECP256R1())
                cert = self._issue_client(dev, kind, key.public_key(), ca_pair)
                self._write_bundle(dev, cert, key, sync=False)
                done.append(Enrolment(dev, kind, cert.serial_number))
            os.sync()
            ids = {e.id for e in done}
            state["enrolments"] = [e for e in state["enrolments"] if e["id"] not in ids]
            state["enrolments"] += [asdict(e) for e in done]
            self._save(state)
        return done

    def _issue_client(self, dev: str, kind: str, public, ca_pair=None) -> x509.Certificate:
        ca_key, ca = ca_pair or self._ca()
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"storeedge {self.store}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
            x509.NameAttribute(NameOID.COMMON_NAME, dev)])
        return self._sign(subject, public, ca_key, ca, [
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)])

    def _sign(self, subject, public, ca_key, ca, extensions) -> x509.Certificate:
        now = _now()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
                   .public_key(public).serial_number(x509.random_serial_number())
                   .not_valid_before(now - BACKDATE)
                   .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), False))
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical)
        return builder.sign(ca_key, hashes.SHA256())

    def _write_bundle(self, dev: str, cert: x509.Certificate, key, sync: bool = True) -> None:
        d = self.bundle_dir(dev)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        _write_public(d / "ca.crt", self.ca_crt.read_bytes())
        _write_public(d / f"{dev}.crt", _cert_pem(cert))
        if key is not None:
            _write_private(d / f"{dev}.key", _key_pem(key), sync)
        else:
            (d / f"{dev}.key").unlink(missing_ok=True)
        _write_public(d / "command.pub", self.command_pub.read_bytes())
        _write_private(d / "e2e.key", derive_e2e_key(self.e2e_master.read_bytes(),
                                                     self.store, dev), sync)

    def revoke(self, dev: str) -> Enrolment:
        """Revoke ``dev``'s certificate: mark it revoked and re-issue ``crl.pem``."""
        check_id(dev)
        with self._locked() as state:
            current = next((e for e in state["enrolments"] if e["id"] == dev), None)
            if current is None:
                raise PKINotFound(f"{dev} is not enrolled")
            if current["revoked"]:
                raise PKIError(f"{dev} is already revoked")
            current["revoked"] = True
            state["revoked_serials"].append({"serial": current["serial"],
                                             "at": int(_now().timestamp())})
            self._save(state)
            self._write_crl(state["revoked_serials"])
        return Enrolment(**current)

    def _write_crl(self, revoked: Iterable[dict]) -> None:
        ca_key, ca = self._ca()
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
                   .last_update(now - BACKDATE)
                   .next_update(now + dt.timedelta(days=CRL_DAYS)))
        for r in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(r["serial"])
                .revocation_date(dt.datetime.fromtimestamp(r["at"], dt.timezone.utc)).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        _write_public(self.crl_pem, crl.public_bytes(serialization.Encoding.PEM))

    def revoked_serials(self) -> list[int]:
        """Serials listed in the CRL."""
        return [r["serial"] for r in self._load()["revoked_serials"]]

    # ------------------------------------------------------------------ brokers

    def server_cert(self, name: str, hosts: Iterable[str] = ("127.0.0.1", "localhost")
                    ) -> TLSFiles:
        """A broker's server certificate (CN = name, SAN = hosts), issued once and reused.

        Re-issued when the stored one lacks one of ``hosts``. Written to ``brokers/<name>/``.
        """
        check_id(name)
        hosts = list(hosts)
        d = self.root / "brokers" / name
        files = TLSFiles(self.ca_crt, d / "server.crt", d / "server.key")
        with self._locked():
            if files.cert.is_file() and set(hosts) <= _san_hosts(files.cert):
                return files
            d.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            ca_key, ca = self._ca()
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
            cert = self._sign(subject, key.public_key(), ca_key, ca, [
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                (x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)])
            _write_private(files.key, _key_pem(key))
            _write_public(files.cert, _cert_pem(cert))
        return files


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _san_hosts(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            | set(san.get_values_for_type(x509.DNSName)))
