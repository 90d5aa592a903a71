"""The ingress end to end: a live ``shoal serve --runtime local`` in front of real app processes.

Websockets, server-sent events and large uploads must stream through; redirects, rewrites,
authority matches, CORS and maintenance are answered the way the spec's ingress rules say.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.conftest import unique_name, wait_deployment
from tests.e2e.apps import make_repo
from tests.live import LiveServer

# Plain HTTP: echoes what it saw, streams events, counts uploads (decoding chunked bodies itself).
WEB = '''
import hashlib, http.server, json, os, time

class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body, ctype="text/plain"):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/events":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            for i in range(6):
                self.wfile.write(f"id: {i}\\ndata: {time.time()}\\n\\n".encode())
                time.sleep(0.3)
            return
        self.reply(200, json.dumps({"path": self.path, "host": self.headers.get("host"),
                                    "forwarded_host": self.headers.get("x-forwarded-host")}), "application/json")

    def do_OPTIONS(self):
        self.reply(200, "app reached")

    def do_POST(self):
        digest, count = hashlib.sha256(), 0
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                while size:
                    chunk = self.rfile.read(min(size, 1 << 16))
                    digest.update(chunk); count += len(chunk); size -= len(chunk)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\\r\\n", b""):
                pass  # trailers, then the blank line
        else:
            left = int(self.headers.get("content-length") or 0)
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                digest.update(chunk); count += len(chunk); left -= len(chunk)
        self.reply(200, json.dumps({"bytes": count, "sha256": digest.hexdigest(),
                                    "chunked": "transfer-encoding" in self.headers}), "application/json")

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''

# Websocket echo: "whoami" answers with the path and subprotocol, "close:<code>" closes with it.
WS = '''
import asyncio, os
from websockets.asyncio.server import serve

async def handler(ws):
    async for message in ws:
        if message == "whoami":
            await ws.send(f"{ws.request.path} {ws.subprotocol}")
        elif isinstance(message, str) and message.startswith("close:"):
            await ws.close(int(message[6:]), "asked to")
        else:
            await ws.send(message)

async def main():
    async with serve(handler, "127.0.0.1", int(os.environ["PORT"]), subprotocols=["chat.v1"]):
        await asyncio.Future()

asyncio.run(main())
'''

ALIAS = "alt.ingress.example"
CORS = {"allow_origins": [{"exact": "https://a.example"}, {"regex": "https://.*\\.b\\.example"}],
        "allow_methods": ["GET", "POST"], "allow_headers": ["X-Token"], "max_age": "1h", "allow_credentials": True}


def _rule(prefix: str, name: str | None = None, options: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"match": {"path": {"prefix": prefix}}, **extra}
    if name:
        rule["component"] = {"name": name, **(options or {})}
    return rule


def _spec(repo: Path, name: str, maintenance: bool = False) -> dict[str, Any]:
    git = {"git": {"repo_clone_url": str(repo), "branch": "main"}}
    spec: dict[str, Any] = {
        "name": name,
        "services": [{"name": "web", **git, "source_dir": "web", "run_command": "python3 app.py"}],
    }
    if maintenance:
        return {**spec, "maintenance": {"enabled": True}}
    spec["services"].append({"name": "ws", **git, "source_dir": "ws", "run_command": "python3 app.py"})
    spec["domains"] = [{"domain": ALIAS, "type": "ALIAS"}]
    spec["ingress"] = {"rules": [
        {"match": {"authority": {"exact": ALIAS}, "path": {"prefix": "/"}},
         "component": {"name": "web", "rewrite": "/via-alias"}},
        _rule("/ws", "ws"),
        _rule("/r301", redirect={"uri": "/moved", "redirect_code": 301}),
        _rule("/r302", redirect={"authority": "elsewhere.example", "scheme": "http", "redirect_code": 302}),
        _rule("/r307", redirect={"uri": "/kept", "authority": "k.example", "port": 8443, "redirect_code": 307}),
        _rule("/r308", redirect={"scheme": "https", "redirect_code": 308}),
        _rule("/rw", "web", {"rewrite": "/inner"}),
        _rule("/keep", "web", {"preserve_path_prefix": True}),
        _rule("/cors", "web", cors=CORS),
        _rule("/", "web"),
    ]}
    return spec


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any], dict[str, Any]]]:
    """One server; the main app and an app in maintenance, deployed side by side."""
    root = tmp_path_factory.mktemp("ingress")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
    try:
        repo = make_repo(root / "repo", {"web/app.py": WEB, "ws/app.py": WS})
        client = server.client()
        created = [client.apps.create(body={"spec": _spec(repo, unique_name(kind), kind == "down")})["app"]
                   for kind in ("ingress", "down")]
        for app in created:
            dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=120)
            assert dep["phase"] == "ACTIVE", (dep["progress"], server.log()[-3000:])
        main, down = (client.apps.get(app["id"])["app"] for app in created)
        yield server, main, down
    finally:
        server.stop()


def _dial(server: LiveServer) -> socket.socket:
    """A connection to the ingress, so a websocket client can name any host in its URL."""
    return socket.create_connection(("127.0.0.1", server.ingress_port), timeout=5)


def _get(server: LiveServer, host: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": host, **kwargs.pop(
        "headers", {})}, timeout=10, **kwargs)


def _seen(server: LiveServer, host: str, path: str) -> str:
    response = _get(server, host, path)
    assert response.status_code == 200, response.text
    return str(response.json()["path"])


def test_websocket_echoes_text_and_binary_through_the_ingress(live: Any) -> None:
    server, app, _ = live
    offered = [Subprotocol("chat.v1"), Subprotocol("other")]
    with connect(f"ws://{app['live_domain']}/ws/room/1?x=1", sock=_dial(server), subprotocols=offered) as ws:
        assert ws.subprotocol == "chat.v1"
        ws.send("whoami")
        assert ws.recv(timeout=5) == "/room/1?x=1 chat.v1"  # prefix stripped, query kept
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        blob = os.urandom(200_000)
        ws.send(blob)
        assert ws.recv(timeout=5) == blob
        ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


def test_websocket_without_a_route_is_refused(live: Any) -> None:
    server, _, _ = live
    with pytest.raises(InvalidStatus) as refused, connect("ws://nobody.example/ws", sock=_dial(server)):
        pass
    assert refused.value.response.status_code == 404  # no app at that host: the ingress's own page


def test_server_sent_events_arrive_as_they_are_sent(live: Any) -> None:
    server, app, _ = live
    arrivals: list[tuple[float, float]] = []  # (received at, sent at)
    with httpx.stream("GET", f"http://127.0.0.1:{server.ingress_port}/events", headers={"host": app["live_domain"]},
                      timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.time(), float(line[6:])))
    assert len(arrivals) == 6
    first_received, last_sent = arrivals[0][0], arrivals[-1][1]
    assert first_received < last_sent - 1.0  # the first event was read while five more were still to come
    assert all(received - sent < 0.25 for received, sent in arrivals)


def test_a_50mb_chunked_upload_streams_without_growing_the_ingress(live: Any) -> None:
    server, app, _ = live
    ingress = psutil.Process(server.process.pid)
    baseline = ingress.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], ingress.memory_info().rss)
            time.sleep(0.02)

    digest = hashlib.sha256()
    block = os.urandom(1 << 20)

    def body() -> Iterator[bytes]:
        for i in range(50):
            chunk = bytes([i]) + block[1:]
            digest.update(chunk)
            yield chunk

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = httpx.post(f"http://127.0.0.1:{server.ingress_port}/upload", content=body(),
                              headers={"host": app["live_domain"]}, timeout=60)
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 200, response.text
    assert response.json() == {"bytes": 50 << 20, "sha256": digest.hexdigest(), "chunked": True}
    assert peak[0] - baseline < 30 << 20, f"ingress RSS grew by {(peak[0] - baseline) >> 20} MiB"


@pytest.mark.parametrize(("path", "code", "location"), [
    ("/r301/a?q=1", 301, "https://{host}/moved"),
    ("/r302/a?q=1", 302, "http://elsewhere.example/r302/a?q=1"),
    ("/r307/a", 307, "https://k.example:8443/kept"),
    ("/r308/a?q=1", 308, "https://{host}/r308/a?q=1"),
])
def test_redirect_rules(live: Any, path: str, code: int, location: str) -> None:
    server, app, _ = live
    response = _get(server, app["live_domain"], path)
    assert response.status_code == code
    assert response.headers["location"] == location.format(host=app["live_domain"])


def test_rewrite_preserve_prefix_and_authority_match(live: Any) -> None:
    server, app, _ = live
    host = app["live_domain"]
    assert _seen(server, host, "/rw/x") == "/inner/x"
    assert _seen(server, host, "/rw") == "/inner"
    assert _seen(server, host, "/keep/x") == "/keep/x"
    assert _seen(server, ALIAS, "/x") == "/via-alias/x"  # only this domain matches the authority rule
    assert _seen(server, host, "/x") == "/x"
    seen = _get(server, host, "/x").json()
    assert seen["host"] == host and seen["forwarded_host"] == host


@pytest.mark.parametrize("path", [
    "/q?a=1&b=%2F%20x&c=&a=2",
    "/files/a%20b/c.txt?x=%26",
    "/keep/%C3%A9t%C3%A9",
    "/files/c%2Fd.txt",
    "/files/what%3F.txt?x=1",
    "/files/100%25",
])
def test_query_strings_and_percent_encoding_pass_through_unchanged(live: Any, path: str) -> None:
    server, app, _ = live
    assert _seen(server, app["live_domain"], path) == path


def test_cors_preflight_and_simple_requests(live: Any) -> None:
    server, app, _ = live
    host = app["live_domain"]
    base = f"http://127.0.0.1:{server.ingress_port}/cors/thing"
    asked = {"host": host, "access-control-request-method": "POST", "access-control-request-headers": "x-token"}
    allowed = httpx.options(base, headers={**asked, "origin": "https://x.b.example"}, timeout=10)
    assert allowed.status_code == 204 and allowed.text == ""  # answered by the ingress, the app never saw it
    assert allowed.headers["access-control-allow-origin"] == "https://x.b.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-token" in allowed.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-max-age"] == "3600"
    assert allowed.headers["access-control-allow-credentials"] == "true"

    refused = httpx.options(base, headers={**asked, "origin": "https://evil.example"}, timeout=10)
    assert not any(k.startswith("access-control-") for k in refused.headers)

    simple = _get(server, host, "/cors/thing", headers={"origin": "https://a.example"})
    assert simple.status_code == 200 and simple.headers["access-control-allow-origin"] == "https://a.example"
    assert simple.headers["access-control-allow-credentials"] == "true"
    other = _get(server, host, "/cors/thing", headers={"origin": "https://a.example.evil"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


def test_maintenance_serves_the_offline_page(live: Any) -> None:
    server, _, down = live
    response = _get(server, down["live_domain"], "/anything")
    assert response.status_code == 503
    assert "under maintenance" in response.text and down["spec"]["name"] in response.text
    assert response.headers["retry-after"] == "300"


def test_upload_reply_is_json(live: Any) -> None:
    """A small fixed-length body takes the same path (content-length kept, not re-chunked)."""
    server, app, _ = live
    response = httpx.post(f"http://127.0.0.1:{server.ingress_port}/upload", content=b"abc",
                          headers={"host": app["live_domain"]}, timeout=10)
    assert json.loads(response.text) == {"bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest(), "chunked": False}


def test_bytes_out_feed_the_daily_bandwidth_metrics(live: Any) -> None:
    server, app, down = live
    client = server.client()
    today = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())

    def used(app_id: str) -> int:
        return int(client.apps.get_metrics_bandwidth_daily(app_id, date=today)["app_bandwidth_usage"][0]
                   ["bandwidth_bytes"])

    before = used(app["id"])
    sizes = [len(_get(server, app["live_domain"], f"/count/{i}").content) for i in range(20)]
    after = used(app["id"])
    assert after - before >= sum(sizes)  # bodies, and the heads on top
    assert after - before < sum(sizes) + 20 * 1024
    offline = len(_get(server, down["live_domain"], "/").content)
    many = client.apps.list_metrics_bandwidth_daily(body={"app_ids": [app["id"], down["id"]], "date": today})
    usage = {u["app_id"]: int(u["bandwidth_bytes"]) for u in many["app_bandwidth_usage"]}
    assert usage[app["id"]] >= after and usage[down["id"]] >= offline  # the offline page is traffic too
    assert many["date"] == today


# An ASGI app under hypercorn, which speaks HTTP/2 to a client that opens with the HTTP/2 preface.
H2_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = f"http/{scope['http_version']} {scope['method']} {scope['path']} {size}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
'''


def test_http2_services_get_h2c(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", runtime="local").start()
    try:
        repo = make_repo(tmp_path / "repo", {"h2/app.py": H2_APP})
        spec = {"name": unique_name("h2c"), "services": [{
            "name": "api", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "h2",
            "protocol": "HTTP2", "http_port": 8080,
            "run_command": "python3 -m hypercorn app:app --bind 127.0.0.1:$PORT"}]}
        client = server.client()
        app = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=120)
        assert dep["phase"] == "ACTIVE", (dep["progress"], server.log()[-3000:])
        host = client.apps.get(app["id"])["app"]["live_domain"]
        with httpx.Client(base_url=f"http://127.0.0.1:{server.ingress_port}", headers={"host": host},
                          timeout=10) as http:
            answers = [http.get(f"/hello/{i}").text for i in range(3)]
            upload = http.post("/up", content=os.urandom(3 << 20)).text
        assert answers == [f"http/2 GET /hello/{i} 0" for i in range(3)]  # the client spoke HTTP/1.1
        assert upload == f"http/2 POST /up {3 << 20}"  # larger than HTTP/2's initial windows
    finally:
        server.stop()
