"""A console client that speaks exactly what ``doctl apps console`` speaks (runtime reference §6).

godo asks ``GET …/components/{component}/exec[?instance_name=…]`` with a bearer token; doctl takes
the ``token`` from the returned URL's query, dials the URL with no header and no subprotocol,
sends a resize frame at once, then every keystroke as its own ``{"op":"stdin","data":…}`` text frame
(one byte at a time) and an empty stdin frame as a keepalive; it writes every ``{"data":…}`` frame
it receives to the terminal and ends cleanly only on a normal closure (1000).
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.live import LiveServer

GODO_HEADERS = {"Accept": "application/json", "User-Agent": "godo/1.160.0 doctl/1.140.0"}


def exec_url(server: LiveServer, app_id: str, component: str, instance: str | None = None,
             deployment: str | None = None, token: str | None = None) -> httpx.Response:
    path = (f"/v2/apps/{app_id}/deployments/{deployment}/components/{component}/exec" if deployment
            else f"/v2/apps/{app_id}/components/{component}/exec")
    params = {"instance_name": instance} if instance else None
    with server.http(token=token) as http:
        return http.get(path, params=params, headers=GODO_HEADERS)


class DoctlConsole:
    """One session, driven the way doctl's terminal loop drives it."""

    def __init__(self, url: str, ca: str, width: int = 80, height: int = 24) -> None:
        parsed = urlparse(url)
        token = parse_qs(parsed.query)["token"][0]  # doctl re-sets it as the token query parameter
        dial = urlunparse(parsed._replace(query=urlencode({"token": token})))
        context = ssl.create_default_context(cafile=ca) if parsed.scheme == "wss" else None
        self._dialed = connect(dial, ssl=context, open_timeout=20)
        self.ws: ClientConnection = self._dialed.__enter__()
        self.output = ""
        self.close_code: int | None = None
        try:
            self.resize(width, height)
        except ConnectionClosed:  # a session the server ended at once (its frames are still readable)
            pass

    def resize(self, width: int, height: int) -> None:
        self.ws.send(json.dumps({"op": "resize", "width": width, "height": height}))

    def type(self, text: str) -> None:
        for byte in text.encode():
            # Go's json.Marshal of string([]byte{b}): invalid UTF-8 becomes U+FFFD.
            self.ws.send(json.dumps({"op": "stdin", "data": bytes([byte]).decode("utf-8", "replace")}))

    def keepalive(self) -> None:
        self.ws.send(json.dumps({"op": "stdin", "data": ""}))

    def read_until(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen within {timeout}s; output so far: {self.output!r}")
            self._receive(left)
        return self.output

    def value_after(self, marker: str, timeout: float = 30) -> str:
        """What follows the last ``marker`` on its line, once that line is complete."""
        deadline = time.monotonic() + timeout
        self.read_until(marker, timeout)
        while "\n" not in self.output.rsplit(marker, 1)[1]:
            if time.monotonic() > deadline:
                raise AssertionError(f"no line end after {marker!r}: {self.output!r}")
            self._receive(max(0.01, deadline - time.monotonic()))
        return self.output.rsplit(marker, 1)[1].split("\n", 1)[0].strip()

    def _receive(self, timeout: float) -> None:
        try:
            message = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            raise
        frame: Any = json.loads(message)  # doctl: anything but {"data": "..."} ends the session with an error
        assert isinstance(frame, dict) and isinstance(frame["data"], str), frame
        self.output += frame["data"]

    def wait_closed(self, timeout: float = 30, keepalive_every: float | None = None) -> int | None:
        """Read until the server closes; the close code (1000 is doctl's clean end)."""
        deadline = time.monotonic() + timeout
        last_keepalive = time.monotonic()
        while time.monotonic() < deadline:
            if keepalive_every is not None and time.monotonic() - last_keepalive > keepalive_every:
                try:
                    self.keepalive()
                except ConnectionClosed as closed:  # the server closed between two reads
                    self.close_code = closed.rcvd.code if closed.rcvd else None
                    return self.close_code
                last_keepalive = time.monotonic()
            try:
                self._receive(min(1.0, max(0.01, deadline - time.monotonic())))
            except ConnectionClosed:
                return self.close_code
        raise AssertionError(f"the server did not close the console within {timeout}s: {self.output!r}")

    def busy_until_closed(self, timeout: float = 120) -> int | None:
        """Type a shell no-op every second (activity, unlike keepalives) until the server closes; its close code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.type(":\n")
            except ConnectionClosed:  # what the server sent before its close is still to be read
                return self.wait_closed(timeout=max(1.0, deadline - time.monotonic()))
            try:
                self._receive(1.0)
            except ConnectionClosed:
                return self.close_code
        raise AssertionError(f"the server did not close the console within {timeout}s: {self.output!r}")

    def close(self) -> None:
        self.ws.close(code=1000)
        self._dialed.__exit__(None, None, None)
