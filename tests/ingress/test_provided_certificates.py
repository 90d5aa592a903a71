"""The HTTPS ingress with the operator's own certificates: chosen by the names they carry
(wildcards too), the local CA for every other host, renewals picked up without a restart, and
files that cannot be used reported, all through real TLS handshakes on loopback."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from cryptography import x509

from shoal.ingress.tls import SniContexts
from shoal.local_ca import ensure_server_tls, provided_certificates
from tests.certs import OperatorCa
from tests.runtime.aio import run_async


async def served_serial(port: int, host: str, trust: Path) -> int:
    """Handshake as ``host`` (verifying against ``trust`` only) and return the serial it was shown."""
    client = ssl.create_default_context(cafile=str(trust))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=host)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()


@run_async
async def test_operator_certificates_are_served_by_name_and_renewals_are_picked_up(tmp_path: Path) -> None:
    operator, mine = OperatorCa(), tmp_path / "mine"
    operator.issue(mine / "shop.pem", mine / "shop-key.pem", ["shop.example.test"], serial=1001)
    operator.issue(mine / "wild.crt", mine / "wild.key", ["*.own.example.test"], serial=1002)
    # certbot's layout, as in /etc/letsencrypt/live: a folder per certificate
    operator.issue(mine / "api.example.test" / "fullchain.pem", mine / "api.example.test" / "privkey.pem",
                   ["api.example.test"], serial=1003)
    (mine / "broken.pem").write_text("not a certificate")
    trust = tmp_path / "operator-ca.pem"
    trust.write_bytes(operator.pem())
    local_ca = ensure_server_tls(tmp_path / "tls").ca_cert

    contexts = SniContexts(tmp_path / "tls", lambda host: None, provided=mine, rescan_seconds=0)
    assert contexts.provided_names == ["*.own.example.test", "api.example.test", "shop.example.test"]
    assert len(contexts.problems) == 1 and "broken.pem" in contexts.problems[0]
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=contexts.default)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await served_serial(port, "shop.example.test", trust) == 1001
        assert await served_serial(port, "anything.own.example.test", trust) == 1002
        assert await served_serial(port, "api.example.test", trust) == 1003
        # A host no certificate of the operator's covers gets one from shoal's CA.
        assert await served_serial(port, "other.example.test", local_ca) not in (1001, 1002, 1003)
        # Renewed in place: the next handshake shows the new certificate, no restart needed.
        operator.issue(mine / "shop.pem", mine / "shop-key.pem", ["shop.example.test"], serial=2001)
        assert await served_serial(port, "shop.example.test", trust) == 2001
    finally:
        server.close()
        await server.wait_closed()


def test_of_two_certificates_for_one_name_the_later_expiring_wins(tmp_path: Path) -> None:
    operator = OperatorCa()
    operator.issue(tmp_path / "a.pem", tmp_path / "a-key.pem", ["x.example.test"], serial=1)
    operator.issue(tmp_path / "b.pem", tmp_path / "b-key.pem", ["x.example.test", "y.example.test"], serial=2)
    found, problems = provided_certificates(tmp_path)
    assert problems == [] and set(found) == {"x.example.test", "y.example.test"}
    assert found["x.example.test"].expires <= found["y.example.test"].expires


def test_a_key_that_does_not_match_its_certificate_is_reported(tmp_path: Path) -> None:
    operator = OperatorCa()
    operator.issue(tmp_path / "a.pem", tmp_path / "a-key.pem", ["x.example.test"], serial=1)
    operator.issue(tmp_path / "b.pem", tmp_path / "b-key.pem", ["y.example.test"], serial=2)
    (tmp_path / "a-key.pem").write_bytes((tmp_path / "b-key.pem").read_bytes())
    found, problems = provided_certificates(tmp_path)
    assert set(found) == {"y.example.test"}
    assert len(problems) == 1 and "a.pem" in problems[0] and "private key" in problems[0]
