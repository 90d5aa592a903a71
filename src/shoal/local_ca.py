"""A local certificate authority and the certificates it signs, kept in one directory.

shoal serves its API over HTTPS from the first start, the way DigitalOcean does, so clients
(pydo's ``connection_verify``, doctl via ``SSL_CERT_FILE``, ``curl --cacert``) need one file to
trust: ``ca.pem``. The CA is made once and reused; leaf certificates (the API server's, and
later the ingress's per-domain ones) are reissued by the same CA whenever they near expiry or
stop covering the hosts asked for, so clients never have to re-trust anything.

Layout of ``tls_dir`` (mode 0700, private keys 0600)::

    ca.pem  ca-key.pem            the authority (EC P-256, 10 years)
    server.pem  server-key.pem    the API server (serverAuth, ~1 year)
    certs/NAME.pem  NAME-key.pem  certificates from ``issue_certificate``

Operators may bring their own certificates instead (``provided_certificates``): a directory of
PEM pairs, read only, matched to hosts by the names the certificates carry.

This module only touches files under ``tls_dir`` (and reads the operator's directory); it never
loads anything into an SSL context.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.core.clock import Clock, SystemClock

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

CA_LIFETIME = timedelta(days=3650)
LEAF_LIFETIME = timedelta(days=365)
# Reissue this long before expiry, so a server restarted in the last month is never caught out.
RENEW_BEFORE = timedelta(days=30)
# Backdate notBefore a little: a client whose clock runs slightly behind would otherwise reject
# a certificate issued a moment ago as "not yet valid".
BACKDATE = timedelta(hours=1)

_SAFE_NAME_RE = re.compile(r"[^a-z0-9.-]+")

Host: TypeAlias = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class TlsFiles:
    """Paths a server needs: what to present (cert, key) and what clients must trust (ca_cert)."""

    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class _Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def ensure_server_tls(
    tls_dir: Path, hosts: Sequence[str] = DEFAULT_HOSTS, *, clock: Clock | None = None
) -> TlsFiles:
    """The CA and API server certificate in ``tls_dir``, creating or reissuing what is needed."""
    now = (clock or SystemClock()).now()
    with _locked(tls_dir):
        authority = _ensure_authority(tls_dir, now)
        cert, key = tls_dir / "server.pem", tls_dir / "server-key.pem"
        _ensure_leaf(authority, hosts, cert, key, now)
    return TlsFiles(ca_cert=tls_dir / "ca.pem", cert=cert, key=key)


def issue_certificate(
    tls_dir: Path, hosts: Sequence[str], *, name: str | None = None, clock: Clock | None = None
) -> tuple[Path, Path]:
    """A certificate for ``hosts`` signed by the CA in ``tls_dir``, as (cert_path, key_path).

    Stored under ``certs/`` as ``NAME.pem`` (``name`` defaults to the first host, so a wildcard
    ``*.example.com`` becomes ``_.example.com.pem``); an existing certificate that still covers
    ``hosts`` and is not near expiry is returned as is.
    """
    now = (clock or SystemClock()).now()
    stem = _file_stem(name or _first(hosts))
    with _locked(tls_dir):
        authority = _ensure_authority(tls_dir, now)
        certs = tls_dir / "certs"
        certs.mkdir(mode=0o700, exist_ok=True)
        cert, key = certs / f"{stem}.pem", certs / f"{stem}-key.pem"
        _ensure_leaf(authority, hosts, cert, key, now)
    return cert, key


@dataclass(frozen=True)
class ProvidedCertificate:
    cert: Path  # the certificate, optionally followed by its chain
    key: Path
    expires: datetime


def provided_certificates(directory: Path) -> tuple[dict[str, ProvidedCertificate], list[str]]:
    """The operator's certificates in ``directory`` by the DNS names they cover (``*.example.com``
    for a wildcard), and a line for each file that could not be used.

    Three layouts are read: ``NAME.pem`` with ``NAME-key.pem`` (mkcert's, and shoal's own),
    ``NAME.crt`` with ``NAME.key``, and a folder per certificate holding ``fullchain.pem`` and
    ``privkey.pem`` (certbot's ``live/`` directory). Where two cover one name, the one that
    expires last wins.
    """
    pairs: list[tuple[Path, Path]] = []
    for path in sorted(directory.iterdir()):
        if path.is_dir() and (path / "fullchain.pem").exists():
            pairs.append((path / "fullchain.pem", path / "privkey.pem"))
        elif path.suffix == ".pem" and not path.stem.endswith("-key"):
            pairs.append((path, path.with_name(f"{path.stem}-key.pem")))
        elif path.suffix == ".crt":
            pairs.append((path, path.with_suffix(".key")))
    found: dict[str, ProvidedCertificate] = {}
    problems: list[str] = []
    for cert_path, key_path in pairs:
        loaded = _load_pair(cert_path, key_path)
        if loaded is None:
            problems.append(f"{cert_path}: no matching private key at {key_path}, or not a PEM certificate")
            continue
        cert = loaded[0]
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        if not names:
            problems.append(f"{cert_path}: the certificate names no DNS host (subjectAltName)")
            continue
        entry = ProvidedCertificate(cert_path, key_path, cert.not_valid_after_utc)
        for name in names:
            current = found.get(name.lower())
            if current is None or current.expires < entry.expires:
                found[name.lower()] = entry
    return found, problems


# -- the authority ---------------------------------------------------------------------------


def _ensure_authority(tls_dir: Path, now: datetime) -> _Authority:
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    existing = _load_pair(cert_path, key_path)
    if existing is not None and existing[0].not_valid_after_utc - RENEW_BEFORE > now:
        cert, key = existing
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return _Authority(cert, key)
    # A new CA means every client must trust the new ca.pem, so this happens only when there is
    # none, it is unreadable, or it is about to expire; its leaves then fail the issuer check in
    # _leaf_is_current and are reissued too.
    authority = _new_authority(now)
    _write_pem(key_path, _key_pem(authority.key), private=True)
    _write_pem(cert_path, authority.cert.public_bytes(serialization.Encoding.PEM), private=False)
    return authority


def _new_authority(now: datetime) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random suffix keeps the names of two shoal installs apart in one trust store.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shoal"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"shoal local CA {secrets.token_hex(4)}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        # Self-signed roots may omit the AKI, but strict verifiers (OpenSSL's x509_strict,
        # Python 3.13's default context) are happier with both identifiers present.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Authority(cert, key)


# -- leaf certificates -----------------------------------------------------------------------


def _ensure_leaf(authority: _Authority, hosts: Sequence[str], cert_path: Path, key_path: Path, now: datetime) -> None:
    wanted = _parse_hosts(hosts)
    existing = _load_pair(cert_path, key_path)
    if existing is not None and _leaf_is_current(existing[0], authority, wanted, now):
        return
    cert, key = _new_leaf(authority, hosts, wanted, now)
    # Key first: a crash between the two writes leaves a mismatched pair, which _load_pair
    # rejects, so the next call simply issues again.
    _write_pem(key_path, _key_pem(key), private=True)
    _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM), private=False)


def _leaf_is_current(cert: x509.Certificate, authority: _Authority, wanted: list[Host], now: datetime) -> bool:
    try:
        cert.verify_directly_issued_by(authority.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = set(san)
    return all(host in present for host in wanted)


def _new_leaf(
    authority: _Authority, hosts: Sequence[str], wanted: list[Host], now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = authority.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    # Never outlive the issuer: verifiers reject a chain once any link has expired anyway.
    not_after = min(now + LEAF_LIFETIME, authority.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _first(hosts)[:64])]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    return cert, key


def _parse_hosts(hosts: Sequence[str]) -> list[Host]:
    """Each host as a SAN entry: IP literals as IPAddress (clients never match them as DNS)."""
    entries: list[Host] = []
    for raw in hosts:
        host = raw.strip().strip("[]").lower()
        if not host:
            raise ValueError(f"empty host name in {list(hosts)!r}")
        try:
            entry: Host = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            entry = x509.DNSName(host)
        if entry not in entries:
            entries.append(entry)
    return entries


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- files -----------------------------------------------------------------------------------


def _load_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
    """The certificate and key on disk, or None when either is missing, unreadable or unmatched."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        return None
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pem(path: Path, data: bytes, *, private: bool) -> None:
    """Write via a temporary file and ``os.replace`` so readers see the old file or the new one."""
    # mkstemp creates the file 0600 before any byte is written, so a key is never readable by
    # others even for an instant; certificates are public and widened to 0644 afterwards.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(tls_dir: Path) -> Iterator[None]:
    """Create ``tls_dir`` (0700) and hold an exclusive lock on it for one check-and-issue."""
    # Two processes (or an API server and an ingress thread) starting together must not each
    # mint a different CA; flock serialises them, and the loser then finds the files written.
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    with open(tls_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _first(hosts: Sequence[str]) -> str:
    if not hosts:
        raise ValueError("at least one host is required")
    return hosts[0].strip().strip("[]").lower()


def _file_stem(name: str) -> str:
    stem = _SAFE_NAME_RE.sub("_", name.lower().replace("*", "_")).strip(".")
    if not stem:
        raise ValueError(f"cannot make a file name from {name!r}")
    return stem
