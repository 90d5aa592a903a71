"""The local CA and its certificates, checked by real TLS handshakes through the ``ssl`` module."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from shoal.core.clock import FakeClock, SystemClock
from shoal.local_ca import TlsFiles, ensure_server_tls, issue_certificate


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[int]:
    """A TLS server on 127.0.0.1 that answers each handshake with b"ok"; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass  # the client rejected us; the client side of the test reports why

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def strict_client(ca_cert: Path) -> ssl.SSLContext:
    # Only the CA file, hostname checks on, and X.509 strict mode: close to what Go (doctl) and
    # Python 3.13's default context demand, so a missing key identifier would fail here.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=ca_cert)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    assert context.check_hostname
    return context


def handshake(port: int, ca_cert: Path, server_hostname: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with strict_client(ca_cert).wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.recv(2)


def san_of(cert: Path) -> set[str]:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tls"


def test_server_cert_verifies_for_ip_and_name(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    assert files == TlsFiles(tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server-key.pem")
    with tls_server(files.cert, files.key) as port:
        assert handshake(port, files.ca_cert, "127.0.0.1") == b"ok"
        assert handshake(port, files.ca_cert, "localhost") == b"ok"
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, files.ca_cert, "example.com")


def test_untrusted_without_the_ca(tls_dir: Path, tmp_path: Path) -> None:
    files = ensure_server_tls(tls_dir)
    other = ensure_server_tls(tmp_path / "other")
    with tls_server(files.cert, files.key) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(port, other.ca_cert, "localhost")


def test_files_and_permissions(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    for private in (files.key, tls_dir / "ca-key.pem"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.cert.stat().st_mode) == 0o644
    assert not [p for p in tls_dir.iterdir() if p.name.endswith(".tmp")]


def test_ca_and_server_extensions(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaf_aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert leaf_aki.key_identifier == ca_ski.digest
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert san_of(files.cert) == {"localhost", "127.0.0.1", "::1"}
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > timedelta(days=3600)
    assert timedelta(days=300) < leaf.not_valid_after_utc - leaf.not_valid_before_utc < timedelta(days=398)


def test_second_call_reuses_files(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    before = {p: p.read_bytes() for p in (files.ca_cert, files.cert, files.key, tls_dir / "ca-key.pem")}
    assert ensure_server_tls(tls_dir) == files
    assert {p: p.read_bytes() for p in before} == before


def test_new_host_reissues_with_same_ca(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    ca_before, cert_before = files.ca_cert.read_bytes(), files.cert.read_bytes()
    ensure_server_tls(tls_dir, ("localhost", "127.0.0.1", "shoal.test"))
    assert files.ca_cert.read_bytes() == ca_before
    assert files.cert.read_bytes() != cert_before
    assert san_of(files.cert) == {"localhost", "127.0.0.1", "shoal.test"}
    with tls_server(files.cert, files.key) as port:
        assert handshake(port, files.ca_cert, "shoal.test") == b"ok"
    # A subset of what the certificate already covers needs no new certificate.
    cert_now = files.cert.read_bytes()
    ensure_server_tls(tls_dir, ("shoal.test",))
    assert files.cert.read_bytes() == cert_now


def test_near_expiry_reissues(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    cert_before = files.cert.read_bytes()
    ensure_server_tls(tls_dir, clock=FakeClock(SystemClock().now() + timedelta(days=300)))
    assert files.cert.read_bytes() == cert_before
    ensure_server_tls(tls_dir, clock=FakeClock(SystemClock().now() + timedelta(days=340)))
    assert files.cert.read_bytes() != cert_before


def test_damaged_key_reissues(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    files.key.write_bytes(b"not a key")
    ensure_server_tls(tls_dir)
    with tls_server(files.cert, files.key) as port:
        assert handshake(port, files.ca_cert, "localhost") == b"ok"


def test_issue_certificate_shares_the_ca(tls_dir: Path) -> None:
    files = ensure_server_tls(tls_dir)
    cert, key = issue_certificate(tls_dir, ["*.apps.shoal.test", "apps.shoal.test"])
    assert cert == tls_dir / "certs" / "_.apps.shoal.test.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert issue_certificate(tls_dir, ["*.apps.shoal.test"]) == (cert, key)
    with tls_server(cert, key) as port:
        assert handshake(port, files.ca_cert, "web.apps.shoal.test") == b"ok"


def test_requests_accepts_ca_as_connection_verify(tls_dir: Path) -> None:
    # pydo hands connection_verify to requests/urllib3, which builds its own SSL context.
    requests = pytest.importorskip("requests")
    files = ensure_server_tls(tls_dir)
    with tls_server(files.cert, files.key) as port:
        with pytest.raises(requests.exceptions.ConnectionError) as caught:
            # The toy server speaks no HTTP, so the request fails *after* a verified handshake;
            # a verification failure would surface as SSLError instead.
            requests.get(f"https://127.0.0.1:{port}/", verify=str(files.ca_cert), timeout=5)
        assert not isinstance(caught.value, requests.exceptions.SSLError)


def test_rejects_empty_hosts(tls_dir: Path) -> None:
    with pytest.raises(ValueError):
        ensure_server_tls(tls_dir, ())
