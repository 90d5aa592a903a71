"""One connection to a cluster: the official client's ApiClient, used for raw JSON requests and streams.

The backend handles objects as plain JSON dicts (what it renders and what ``kubernetes-validate``
checks), so it uses the client for what it is best at — kubeconfig and in-cluster loading, auth,
TLS, the connection pool — and speaks the REST paths that ``discovery`` finds. Blocking: callers on
the event loop run these in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.config import kube_config as kubeconfig_loader
from kubernetes.config.config_exception import ConfigException

from shoal.runtime.kubernetes.errors import GiveUp, KubeError, RetryIn, from_api_error, from_status

Query = Sequence[tuple[str, str]]
JSON = "application/json"


@dataclass(frozen=True)
class Target:
    """Which cluster: a kubeconfig and optionally one of its contexts; neither means in-cluster."""

    kubeconfig: Path | None = None
    context: str | None = None


def _api_client(target: Target) -> Any:
    configuration = kube_client.Configuration()
    shared = set(getattr(kubeconfig_loader, "_temp_files", {}).values())  # other clients' files: left alone
    try:
        if target.kubeconfig is None and target.context is None:
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(target.kubeconfig) if target.kubeconfig else None, context=target.context,
                client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = f"kubeconfig {target.kubeconfig}" if target.kubeconfig else "the in-cluster service account"
        context = f" (context {target.context!r})" if target.context else ""
        raise GiveUp(f"cannot load {where}{context}: {exc}") from exc
    _ca_in_memory(configuration, shared)
    return kube_client.ApiClient(configuration=configuration)


def _ca_in_memory(configuration: Any, shared: set[str]) -> None:
    """Keep a kubeconfig's ``certificate-authority-data`` in memory, not in the temp file the loader
    writes for it: the loader removes its files only at interpreter exit, so every ``shoal serve``
    stopped by a signal left one in /tmp. A file another client in this process already uses is left to
    it (the loader shares files by content). Client certificates stay files: urllib3 needs them so."""
    path = configuration.ssl_ca_cert
    created = getattr(kubeconfig_loader, "_temp_files", {})
    if not path or path not in created.values() or path in shared:
        return
    configuration.ca_cert_data = Path(path).read_text()
    configuration.ssl_ca_cert = None
    for key in [k for k, v in created.items() if v == path]:
        del created[key]
    Path(path).unlink(missing_ok=True)


class Kube:
    """A cluster's API as JSON in, JSON out; every failure is a ``RetryIn`` or a ``GiveUp``."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.api = _api_client(target)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, query: Query, body: Any, content_type: str,
              timeout: float | tuple[float, float] | None) -> Any:
        headers = {"Accept": JSON, "Content-Type": content_type}
        try:
            _, url, headers, _, _ = self.api.param_serialize(method, path, query_params=list(query) or None,
                                                             header_params=headers, auth_settings=["BearerToken"])
            # The client's REST layer serialises a dict to JSON for JSON and +yaml content types.
            resp = self.api.rest_client.request(method, url, headers=headers, body=body,
                                                _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise from_api_error(exc, f"{method} {path}") from exc
        except Exception as exc:  # the client's ApiException, raised by its auth or TLS layer
            raise from_api_error(exc, f"{method} {path}") from exc
        if not 200 <= resp.status <= 299:
            data = resp.read()
            retry_after = resp.headers.get("Retry-After")
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise from_status(resp.status, data, f"{method} {path}", seconds)
        return resp

    def request(self, method: str, path: str, query: Query = (), body: Any = None, content_type: str = JSON,
                timeout: float = 30.0) -> dict[str, Any]:
        """One request; the decoded JSON answer (``{}`` for an empty one)."""
        resp = self._send(method, path, query, body, content_type, timeout)
        data = resp.read()
        if not data:
            return {}
        try:
            decoded = json.loads(data)
        except ValueError as exc:
            raise RetryIn(5.0, f"{method} {path}: the API answered something that is not JSON") from exc
        return decoded if isinstance(decoded, dict) else {"value": decoded}

    def get_or_none(self, path: str, query: Query = ()) -> dict[str, Any] | None:
        """GET ``path``; None when it does not exist."""
        try:
            return self.request("GET", path, query)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def lines(self, path: str, query: Query = (), timeout: float | None = None) -> LineStream:
        """GET a streaming ``path`` (a watch, a followed log); iterate the result for its lines as they arrive.

        ``timeout`` bounds the wait for each read (None: as long as the server keeps the stream open).
        ``close()`` on the stream, from any thread, ends it.
        """
        resp = self._send("GET", path, query, None, JSON, (10.0, timeout) if timeout else None)
        return LineStream(resp.response, f"GET {path}")


class LineStream:
    """The lines of one streamed response; closing it (from any thread) closes the connection."""

    def __init__(self, raw: Any, doing: str) -> None:
        self.raw = raw
        self.doing = doing
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.raw.close()

    def __enter__(self) -> LineStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        buffer = bytearray()
        try:
            for segment in self.raw.stream(amt=None, decode_content=False):
                buffer.extend(segment)
                while (cut := buffer.find(b"\n")) != -1:
                    line, buffer = bytes(buffer[:cut]), buffer[cut + 1:]
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            if not self.closed:  # a close() from another thread ends the stream quietly
                raise RetryIn(1.0, f"{self.doing}: the stream broke ({exc})") from exc
        finally:
            self.raw.release_conn()
