"""The run's own certificate authority and one server certificate per host.

`deployment.tls: true` puts every API endpoint, RabbitMQ and MariaDB (and Galera's
replication) behind TLS. The CA is made for the run, on the controller, under
`<run>/tls/` (0700): `ca.pem` (public, also in clouds.yaml as `cacert`), `ca.key`, and per
host `<alias>.pem` / `<alias>.key`. Keys are 0600 and never leave the controller except
each host's own key, which the deploy copies to that host (0600); backups leave every
`*.key` out.

A host's certificate names every address it serves on (IP SANs: clients verify the
address they dial, Python's ssl checks IP SANs) and its alias (DNS SAN). It is issued
again when its names change or the CA changed; otherwise reused, so that a second deploy
changes nothing on the hosts.

ECDSA P-256 keys: their handshake is the cheapest of the common choices, and every client
here (OpenSSL 3 in Python, Erlang/OTP 25 in RabbitMQ, MariaDB 10.11) takes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from femdc_bench.model import Inventory

VALID_DAYS = 90  # longer than any run; the CA dies with the run


@dataclass(frozen=True)
class HostCert:
    """Controller paths of one host's certificate, its key and the run's CA."""

    alias: str
    cert: str
    key: str
    ca: str

    def to_vars(self) -> dict[str, str]:
        return {"ca": self.ca, "cert": self.cert, "key": self.key}


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def tls_dir(run_dir: Path) -> Path:
    d = run_dir / "tls"
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def ensure_ca(run_dir: Path, run_id: str) -> Path:
    """The run's CA (made once): returns the path of ca.pem."""
    d = tls_dir(run_dir)
    ca_pem, ca_key = d / "ca.pem", d / "ca.key"
    if ca_pem.exists() and ca_key.exists():
        return ca_pem
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "femdc-bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"femdc-bench CA {run_id}"[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write(ca_key, _key_pem(key), 0o600)
    _write(ca_pem, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca_pem


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return ({str(a) for a in ext.get_values_for_type(x509.IPAddress)},
            set(ext.get_values_for_type(x509.DNSName)))


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def issue(run_dir: Path, run_id: str, alias: str, addresses: list[str],
          names: list[str] | None = None) -> HostCert:
    """A server (and client) certificate for `alias`, valid for `addresses` (IPs) and
    `names` (DNS), signed by the run's CA; reused when it still matches."""
    ca_pem = ensure_ca(run_dir, run_id)
    d = tls_dir(run_dir)
    crt_path, key_path = d / f"{alias}.pem", d / f"{alias}.key"
    ips = {str(ipaddress.ip_address(a)) for a in addresses}
    dns = set(names or [alias])
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    if crt_path.exists() and key_path.exists():
        old = x509.load_pem_x509_certificate(crt_path.read_bytes())
        if _sans(old) == (ips, dns) and _issued_by(old, ca):
            return HostCert(alias, str(crt_path), str(key_path), str(ca_pem))
    ca_key = _load_key(d / "ca.key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(ips)]
        + [x509.DNSName(n) for n in sorted(dns)])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, alias[:64])]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(san, critical=False)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(key_path, _key_pem(key), 0o600)
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return HostCert(alias, str(crt_path), str(key_path), str(ca_pem))


def host_certs(run_dir: Path, run_id: str, inv: Inventory) -> dict[str, HostCert]:
    """One certificate per host of the inventory (its address and alias)."""
    return {h.alias: issue(run_dir, run_id, h.alias, [h.address], [h.alias])
            for h in inv.hosts}


def ca_fingerprint(ca_pem: Path) -> str:
    """sha256 of the CA certificate (DER), as `openssl x509 -fingerprint -sha256` prints
    it without colons: what the manifest records."""
    cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
