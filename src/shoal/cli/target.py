"""Where ``shoal apps`` talks to: an API URL, a token and the CA to trust, resolved once per command.

Precedence: ``--api-url``/``SHOAL_API_URL``, ``--token``/``SHOAL_TOKEN``/``DIGITALOCEAN_TOKEN`` and
``--ca-cert``/``SHOAL_CA_CERT`` (Typer reads the environment; this module never does). Given neither a
URL nor a token, the local server is assumed: ``https://127.0.0.1:8443`` with the admin token and the
CA that ``shoal serve`` wrote to its data dir. Against ``https://api.digitalocean.com`` pass the URL
and a DigitalOcean token; the system's trust store is used unless a CA is given.

The data dir's admin token is only ever sent to a loopback address.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shoal.core.settings import DEFAULT_API_LISTEN, default_data_dir

LOCAL_URL = f"https://{DEFAULT_API_LISTEN}"


class TargetError(Exception):
    """No usable token or CA: the command cannot even try to connect."""


@dataclass(frozen=True)
class Target:
    url: str
    token: str
    ca_cert: Path | None  # None: the system trust store

    def client(self) -> Any:
        """A pydo client for this target (no retries: every command reports the first failure)."""
        import pydo

        verify: str | bool = str(self.ca_cert) if self.ca_cert else True
        return pydo.Client(self.token, endpoint=self.url, connection_verify=verify, retry_total=0)

    def ssl_context(self) -> ssl.SSLContext:
        """For the requests pydo does not make: log downloads and the live-log websocket."""
        return ssl.create_default_context(cafile=str(self.ca_cert) if self.ca_cert else None)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_target(api_url: str | None, token: str | None, ca_cert: Path | None,
                   data_dir: Path | None) -> Target:
    """The target from the options (already merged with their environment variables by Typer)."""
    data = data_dir or default_data_dir()
    url = (api_url or LOCAL_URL).rstrip("/")
    local = _is_loopback(url)
    if not token:
        admin = data / "admin-token"
        if not local:
            raise TargetError(f"no token for {url}: pass --token or set SHOAL_TOKEN (or DIGITALOCEAN_TOKEN)")
        try:
            token = admin.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TargetError(f"no token: pass --token or set SHOAL_TOKEN, or run `shoal serve` so that "
                              f"{admin} exists ({exc.strerror})") from exc
    if ca_cert is None and local and (data / "tls" / "ca.pem").is_file():
        ca_cert = data / "tls" / "ca.pem"
    if ca_cert is not None and not ca_cert.is_file():
        raise TargetError(f"CA certificate {ca_cert} does not exist")
    return Target(url=url, token=token, ca_cert=ca_cert)
