"""The HTTPS ingress: one listener, a certificate per host chosen by SNI.

Certificates come from shoal's local CA (issued on the first handshake for a host and kept in
``DATA_DIR/tls/certs``), so ``https://<custom domain>`` works for any client that trusts
``ca.pem``. A domain's ``minimum_tls_version`` is enforced per host: a TLS 1.2 client is refused
by a domain that asks for 1.3 (OpenSSL fixes the protocol range before the SNI callback can
swap contexts, so the check runs when the handshake completes and the connection is dropped).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from shoal.tls import issue_certificate

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class SniContexts:
    def __init__(self, tls_dir: Path, min_tls: Callable[[str], str | None], fallback_host: str = "localhost") -> None:
        self._tls_dir = tls_dir
        self._min_tls = min_tls
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._names: dict[int, str] = {}  # id(SSLObject) → the server name it asked for
        self.default = self._context(fallback_host, "1.2")
        self.default.sni_callback = self._choose

    def _context(self, host: str, minimum: str) -> ssl.SSLContext:
        key = (host, minimum)
        found = self._contexts.get(key)
        if found is None:
            cert, private_key = issue_certificate(self._tls_dir, [host])
            found = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            found.minimum_version = VERSIONS.get(minimum, ssl.TLSVersion.TLSv1_2)
            found.load_cert_chain(cert, private_key)
            found.set_alpn_protocols(["http/1.1"])
            self._contexts[key] = found
        return found

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if not server_name:
            return
        host = server_name.lower()
        self._names[id(connection)] = host
        connection.context = self._context(host, self._min_tls(host) or "1.2")

    def acceptable(self, connection: ssl.SSLObject | None) -> bool:
        """Whether a finished handshake meets the minimum TLS version of the host it was for."""
        if connection is None:
            return True
        host = self._names.pop(id(connection), None)
        minimum = VERSIONS.get((self._min_tls(host) if host else None) or "1.2", ssl.TLSVersion.TLSv1_2)
        return minimum != ssl.TLSVersion.TLSv1_3 or connection.version() == "TLSv1.3"
