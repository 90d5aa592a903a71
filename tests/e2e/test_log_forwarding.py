"""Log forwarding end to end: a real app deployed by a real ``shoal serve`` (local runtime) through pydo,
its BUILD, DEPLOY and RUN lines arriving at real receivers on loopback — Papertrail's TLS syslog,
Datadog's and Logtail's HTTP intakes, OpenSearch ``_bulk`` by endpoint and by registered cluster —
with secrets masked; receivers that go down get the lines when they are back, the app answers
throughout, and a destination that never answers has its drops reported in the deployment log."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_deployment
from tests.e2e.apps import make_repo
from tests.live import LiveServer
from tests.receivers import HttpReceiver, ReceiverCa, SyslogReceiver, bulk_ok, free_port, wait_until

SECRET = "s3cr3t-token-4242"
APP = textwrap.dedent('''
    import os, http.server
    print("starting with token", os.environ["API_TOKEN"], flush=True)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            print("served", self.path, flush=True)
            body = b"ok\\n"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
''')


class Receivers:
    def __init__(self, ca: ReceiverCa) -> None:
        context = ca.server_context()
        self.syslog = SyslogReceiver(context).start()
        self.datadog = HttpReceiver(context).start()
        self.logtail = HttpReceiver(context).start()
        self.opensearch = HttpReceiver(context, respond=bulk_ok).start()
        self.cluster = HttpReceiver(context, respond=bulk_ok).start()

    def all(self) -> list[SyslogReceiver | HttpReceiver]:
        return [self.syslog, self.datadog, self.logtail, self.opensearch, self.cluster]

    def lines(self) -> dict[str, list[str]]:
        """What each destination has received, as ``STAGE message`` strings."""
        return {
            "papertrail": [f"{ln.split(' ')[5]} {ln.split(' - ', 1)[1]}" for ln in self.syslog.lines],
            "datadog": [f"{e['ddtags'].split('stage:')[1].split(',')[0].upper()} {e['message']}"
                        for r in self.datadog.received() for e in r.json()],
            "logtail": [f"{e['stage']} {e['message']}" for r in self.logtail.received() for e in r.json()],
            "opensearch": [f"{d['stage']} {d['message']}" for d in self.opensearch.bulk_documents()],
            "cluster": [f"{d['stage']} {d['message']}" for d in self.cluster.bulk_documents()],
        }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Receivers, Path]]:
    root = tmp_path_factory.mktemp("forwarding")
    ca = ReceiverCa(root / "ca")
    receivers = Receivers(ca)
    server = LiveServer(data_dir=root / "data", runtime="local", extra_args=[
        "--log-forward-ca", str(ca.ca_path), "--logtail-endpoint", f"{receivers.logtail.url}/",
        "--log-forward-buffer", "60"])
    try:
        server.start()
        server.shoal("cluster", "add", "logs", "--engine", "OPENSEARCH", "--url",
                     f"https://elastic:cluster-pw@127.0.0.1:{receivers.cluster.port}")
        yield server, receivers, root
    finally:
        server.stop()
        for receiver in receivers.all():
            receiver.stop()


def _spec(repo: Path, receivers: Receivers, dead_port: int) -> dict[str, Any]:
    return {"name": "forwarded", "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python app.py",
        "envs": [{"key": "API_TOKEN", "value": SECRET, "type": "SECRET"}],
        "log_destinations": [
            {"name": "pt", "papertrail": {"endpoint": f"127.0.0.1:{receivers.syslog.port}"}},
            {"name": "dd", "datadog": {"endpoint": receivers.datadog.url, "api_key": "dd-key"}},
            {"name": "lt", "logtail": {"token": "lt-token"}},
            {"name": "os", "open_search": {"endpoint": receivers.opensearch.url, "index_name": "shop-logs",
                                           "basic_auth": {"user": "writer", "password": "os-pw"}}},
            {"name": "cluster", "open_search": {"cluster_name": "logs"}},
            {"name": "dead", "datadog": {"endpoint": f"https://127.0.0.1:{dead_port}", "api_key": "k"}},
        ]}]}


def test_a_deployments_lines_reach_every_destination_and_survive_an_outage(
        setup: tuple[LiveServer, Receivers, Path]) -> None:
    server, receivers, root = setup
    client = server.client()
    repo = make_repo(root / "repo", {"app.py": APP})
    app = client.apps.create(body={"spec": _spec(repo, receivers, free_port())})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"], timeout=180)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    live = client.apps.get(app["id"])["app"]["live_domain"]

    def get(path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": live}, timeout=10)

    assert get("/first").status_code == 200
    every = ("papertrail", "datadog", "logtail", "opensearch", "cluster")
    wait_until(lambda: all("RUN served /first" in receivers.lines()[k] for k in every), timeout=60)
    for kind, lines in receivers.lines().items():
        stages = {line.split(" ", 1)[0] for line in lines}
        assert {"BUILD", "DEPLOY", "RUN"} <= stages, (kind, stages)
        assert "RUN starting with token [secret]" in lines, kind
        assert not any(SECRET in line for line in lines), kind

    assert receivers.datadog.received()[0].headers["dd-api-key"] == "dd-key"
    assert receivers.logtail.received()[0].headers["authorization"] == "Bearer lt-token"
    assert receivers.opensearch.received()[0].headers["authorization"] == "Basic d3JpdGVyOm9zLXB3"  # writer:os-pw
    assert receivers.cluster.received()[0].headers["authorization"] == "Basic ZWxhc3RpYzpjbHVzdGVyLXB3"
    assert receivers.opensearch.received()[0].body.startswith(b'{"index":{"_index":"shop-logs"}}\n')

    for receiver in (receivers.syslog, receivers.datadog):  # down for a while
        receiver.stop()
    for i in range(10):
        assert get(f"/while-down-{i}").status_code == 200  # the app keeps answering
    for receiver in (receivers.syslog, receivers.datadog):
        receiver.start()
    want = {f"RUN served /while-down-{i}" for i in range(10)}
    wait_until(lambda: want <= set(receivers.lines()["papertrail"]) and want <= set(receivers.lines()["datadog"]),
               timeout=90)

    for i in range(70):  # past the bound of the destination that never answers
        assert get(f"/burst-{i}").status_code == 200

    def run_log() -> str:
        answer = client.apps.get_logs_active_deployment(app["id"], "web", type="RUN")
        with server.http(anonymous=True) as http:
            return http.get(answer["historic_urls"][0]).text

    report = wait_until(lambda: "log forwarding:" in run_log() and run_log(), timeout=60)
    assert 'for datadog destination "dead" of web were dropped' in report
    assert "shoal keeps at most 60 lines" in report
    want = {f"RUN served /burst-{i}" for i in range(70)}
    wait_until(lambda: want <= set(receivers.lines()["logtail"]), timeout=60)  # the others lost nothing
    assert not any("log forwarding:" in line for line in receivers.lines()["logtail"])  # reports are not forwarded
