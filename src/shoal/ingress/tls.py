"""The HTTPS ingress: one listener, a certificate per host chosen by SNI.

A host gets the operator's certificate for it when one was provided (``--ingress-tls-certs``:
a directory matched by the names in each certificate, wildcards included, and looked at again
every few seconds, so renewed certificates are served without a restart), otherwise one from
shoal's local CA (issued on the first handshake for the host and kept in ``DATA_DIR/tls/certs``),
so ``https://<custom domain>`` works for any client that trusts ``ca.pem``.

A domain's ``minimum_tls_version`` is enforced per host: a TLS 1.2 client is refused by a domain
that asks for 1.3 (OpenSSL fixes the protocol range before the SNI callback can swap contexts,
so the check runs when the handshake completes and the connection is dropped).
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from shoal.ingress.table import by_host
from shoal.local_ca import ProvidedCertificate, issue_certificate, provided_certificates

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
RESCAN_SECONDS = 5.0  # how often a handshake may look for changed operator certificates
log = logging.getLogger("shoal.ingress")


class SniContexts:
    def __init__(self, tls_dir: Path, min_tls: Callable[[str], str | None], fallback_host: str = "localhost",
                 provided: Path | None = None, rescan_seconds: float = RESCAN_SECONDS,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._tls_dir = tls_dir
        self._min_tls = min_tls
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._names: dict[int, str] = {}  # id(SSLObject) → the server name it asked for
        self._provided_dir = provided
        self._provided: dict[str, ProvidedCertificate] = {}
        self._signature: list[tuple[str, bytes]] | None = None
        self._rescan_seconds = rescan_seconds
        self._now = now
        self._checked_at = float("-inf")
        self.problems: list[str] = []  # operator certificate files that could not be used
        self._rescan()
        self.default = self._new_context(fallback_host, "1.2")
        self.default.sni_callback = self._choose

    @property
    def provided_names(self) -> list[str]:
        """The host names the operator's certificates cover."""
        return sorted(self._provided)

    def _context(self, host: str, minimum: str) -> ssl.SSLContext:
        key = (host, minimum)
        found = self._contexts.get(key)
        if found is None:
            found = self._contexts[key] = self._new_context(host, minimum)
        return found

    def _new_context(self, host: str, minimum: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = VERSIONS.get(minimum, ssl.TLSVersion.TLSv1_2)
        context.set_alpn_protocols(["http/1.1"])
        provided = by_host(self._provided, host)
        if provided is not None:
            try:
                context.load_cert_chain(provided.cert, provided.key)
                return context
            except (OSError, ssl.SSLError) as exc:  # replaced between the scan and now: the CA's for now
                log.warning("cannot load %s for %s (%s); serving a local CA certificate", provided.cert, host, exc)
        context.load_cert_chain(*issue_certificate(self._tls_dir, [host]))
        return context

    def _rescan(self) -> None:
        """Read the operator's directory again when its files changed (at most every few seconds)."""
        now = self._now()
        if self._provided_dir is None or now - self._checked_at < self._rescan_seconds:
            return
        self._checked_at = now
        signature = _signature(self._provided_dir)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            self._provided, self.problems = provided_certificates(self._provided_dir)
        except OSError as exc:
            self._provided, self.problems = {}, [f"{self._provided_dir}: {exc}"]
        for problem in self.problems:
            log.warning("operator certificate not used: %s", problem)
        self._contexts.clear()  # every host chooses again, from what is there now

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        if not server_name:
            return
        host = server_name.lower()
        self._names[id(connection)] = host
        self._rescan()
        connection.context = self._context(host, self._min_tls(host) or "1.2")

    def acceptable(self, connection: ssl.SSLObject | None) -> bool:
        """Whether a finished handshake meets the minimum TLS version of the host it was for."""
        if connection is None:
            return True
        host = self._names.pop(id(connection), None)
        minimum = VERSIONS.get((self._min_tls(host) if host else None) or "1.2", ssl.TLSVersion.TLSv1_2)
        return minimum != ssl.TLSVersion.TLSv1_3 or connection.version() == "TLSv1.3"


def _signature(directory: Path) -> list[tuple[str, bytes]]:
    """What the certificate files hold now, one folder level deep (by content: a renewal written
    within the same clock tick as the last look still shows; links are followed, so a certbot
    renewal, which repoints them, shows too). A few small files, read at most every few seconds."""
    entries: list[tuple[str, bytes]] = []
    try:
        paths = sorted(directory.iterdir())
    except OSError:
        return []
    for path in paths:
        try:
            items = sorted(path.iterdir()) if path.is_dir() else [path]
        except OSError:
            continue
        for item in items:
            try:
                entries.append((str(item), hashlib.sha256(item.read_bytes()).digest()))
            except OSError:
                continue
    return entries
