"""Consoles on Kubernetes: ``doctl apps console`` as an exec into the instance's pod.

The pod's own container runs the shell (``/bin/sh``: images may lack bash), with a tty, through the
API server's exec subresource (the official client's websocket stream): channel 0 is stdin, 1 and
2 the terminal's output (one stream, as DigitalOcean shows it), 4 the window size. The client's
stream is blocking, so one thread per console reads it and hands output to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import RESIZE_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL

from shoal.core.errors import Unavailable
from shoal.runtime.kubernetes.connection import Kube

SHELL = ["/bin/sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
POLL_SECONDS = 0.2


class PodConsole:
    """One exec session with a tty; implements ``shoal.domain.ports.Console``."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._pump, name="pod console", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        try:
            while not self._closed.is_set() and self._ws.is_open():
                self._ws.update(timeout=POLL_SECONDS)
                for channel in (STDOUT_CHANNEL, STDERR_CHANNEL):
                    if self._ws.peek_channel(channel):
                        data = self._ws.read_channel(channel)
                        self._loop.call_soon_threadsafe(self._output.put_nowait, data.encode())
        except Exception:  # noqa: BLE001 - a broken stream ends the session like an exit does
            pass
        finally:
            self._loop.call_soon_threadsafe(self._output.put_nowait, b"")

    async def read(self) -> bytes:
        return await self._output.get()

    def write(self, data: bytes) -> None:
        if not self._closed.is_set():
            self._ws.write_stdin(data.decode(errors="replace"))

    def resize(self, columns: int, rows: int) -> None:
        if not self._closed.is_set():
            self._ws.write_channel(RESIZE_CHANNEL, json.dumps({"Width": columns, "Height": rows}))

    async def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(Exception):
            self._ws.close()
        await asyncio.to_thread(self._reader.join, 5)


async def open_pod_console(kube: Kube, namespace: str, pod: str, container: str | None) -> PodConsole:
    """A shell in ``pod`` (its first container unless ``container`` is named)."""
    try:
        return PodConsole(await asyncio.to_thread(_connect, kube, namespace, pod, container))
    except (ApiException, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise Unavailable(f"could not open a shell in {pod}: {str(reason).splitlines()[0][:300]}") from exc


def _connect(kube: Kube, namespace: str, pod: str, container: str | None) -> Any:
    # The websocket client reads the cluster's CA only from a file, and shoal keeps a kubeconfig's
    # CA in memory (connection.py): it gets a private copy for the handshake, removed right after.
    configuration = copy.copy(kube.api.configuration)
    if configuration.refresh_api_key_hook is not None:
        # The hook refreshes the token and also re-points the CA at the loader's (removed) file: run it
        # once now, then keep this copy's CA where it is put below.
        configuration.refresh_api_key_hook(configuration)
        configuration.refresh_api_key_hook = None
        configuration.ssl_ca_cert = None
    with tempfile.TemporaryDirectory(prefix="shoal-kube-ca-") as scratch:
        if configuration.ca_cert_data and not configuration.ssl_ca_cert:
            ca = Path(scratch) / "ca.pem"
            ca.write_text(configuration.ca_cert_data)
            configuration.ssl_ca_cert = str(ca)
        core = k8s.CoreV1Api(k8s.ApiClient(configuration))
        return stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=SHELL, container=container,
                      stdin=True, stdout=True, stderr=True, tty=True, _preload_content=False)
