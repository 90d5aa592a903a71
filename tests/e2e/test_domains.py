"""Custom domains over the HTTPS ingress: certificates from the local CA by SNI, minimum TLS versions,
PRIMARY driving live_url, ALIAS and wildcard routing, and each domain's status."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs import OperatorCa
from tests.conftest import unique_name, wait_deployment
from tests.e2e.apps import PY_SERVER, make_repo
from tests.live import LiveServer, free_port


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("domains")
    port = free_port()
    server = LiveServer(data_dir=root / "data", runtime="local",
                        extra_args=["--ingress-tls-listen", f"127.0.0.1:{port}"]).start()
    yield server, port, root
    server.stop()


def https_get(server: LiveServer, port: int, host: str, path: str = "/",
              maximum: ssl.TLSVersion | None = None, cafile: str | None = None) -> str:
    """A GET over TLS with ``host`` as SNI and Host, trusting only shoal's CA (or ``cafile``)."""
    context = ssl.create_default_context(cafile=cafile or server.ca)
    if maximum is not None:
        context.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := tls.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def test_domains_are_served_over_https_with_their_minimum_tls_version(tls_server: Any) -> None:
    server, port, root = tls_server
    client = server.client()
    repo = make_repo(root / "repo", {"app.py": PY_SERVER})
    spec = {"name": unique_name("shop"),
            "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                          "run_command": "python3 app.py"}],
            "domains": [{"domain": "shop.example.test", "type": "PRIMARY", "minimum_tls_version": "1.3"},
                        {"domain": "www.example.test", "type": "ALIAS"},
                        {"domain": "example.test", "type": "ALIAS", "wildcard": True}]}
    created = client.apps.create(body={"spec": spec})["app"]
    assert wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)["phase"] == "ACTIVE"
    app = client.apps.get(created["id"])["app"]
    assert app["live_url"] == f"https://shop.example.test:{port}" and app["live_domain"] == "shop.example.test"
    assert {d["spec"]["domain"]: d["phase"] for d in app["domains"]} == {
        "shop.example.test": "ACTIVE", "www.example.test": "ACTIVE", "example.test": "ACTIVE"}
    assert all(s["status"] == "SUCCESS" for d in app["domains"] for s in d["progress"]["steps"])
    assert "ensure-certificate" in [s["name"] for s in app["domains"][0]["progress"]["steps"]]

    answer = https_get(server, port, "shop.example.test", "/hello")
    assert answer.startswith("HTTP/1.1 200") and answer.endswith("v1 hello /hello\n")
    # The PRIMARY domain asks for TLS 1.3: a TLS 1.2 client gets no answer.
    try:
        reply = https_get(server, port, "shop.example.test", "/", maximum=ssl.TLSVersion.TLSv1_2)
    except (ssl.SSLError, OSError):
        reply = ""
    assert reply == "", reply  # the handshake is dropped: no answer at all
    # The ALIAS has no minimum: TLS 1.2 works there, and the wildcard covers any subdomain.
    assert "v1 hello" in https_get(server, port, "www.example.test", "/", maximum=ssl.TLSVersion.TLSv1_2)
    assert "v1 hello" in https_get(server, port, "anything.example.test")
    # Plain HTTP to a custom domain is sent to HTTPS (method kept); the app's own host stays plain.
    for host in ("www.example.test", "anything.example.test"):
        plain = httpx.post(f"http://127.0.0.1:{server.ingress_port}/x?y=1", headers={"host": host}, timeout=10)
        assert plain.status_code == 308 and plain.headers["location"] == f"https://{host}:{port}/x?y=1"
    own = httpx.get(f"http://127.0.0.1:{server.ingress_port}/x", headers={"host": app["default_ingress"].split("//")[-1]
                                                                              .split(":")[0]}, timeout=10)
    assert own.text == "v1 hello /x\n"
    assert (Path(server.data_dir) / "tls" / "certs").is_dir()


def test_the_operators_certificates_serve_the_domains_they_cover(tmp_path: Path) -> None:
    operator, mine = OperatorCa(), tmp_path / "mine"
    operator.issue(mine / "shop.pem", mine / "shop-key.pem", ["shop.mine.test"], serial=4242)
    trust = tmp_path / "operator-ca.pem"
    trust.write_bytes(operator.pem())
    port = free_port()
    server = LiveServer(data_dir=tmp_path / "data", runtime="local", extra_args=[
        "--ingress-tls-listen", f"127.0.0.1:{port}", "--ingress-tls-certs", str(mine)]).start()
    try:
        assert f"your certificates in {mine} cover shop.mine.test" in server.log()
        client = server.client()
        repo = make_repo(tmp_path / "repo", {"app.py": PY_SERVER})
        spec = {"name": unique_name("mine"),
                "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                              "run_command": "python3 app.py"}],
                "domains": [{"domain": "shop.mine.test", "type": "PRIMARY"},
                            {"domain": "other.mine.test", "type": "ALIAS"}]}
        created = client.apps.create(body={"spec": spec})["app"]
        dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)
        assert dep["phase"] == "ACTIVE"
        # The operator's certificate, verified against the operator's CA alone...
        assert "v1 hello /" in https_get(server, port, "shop.mine.test", cafile=str(trust))
        # ...and shoal's CA for the domain it does not cover.
        assert "v1 hello /" in https_get(server, port, "other.mine.test")
    finally:
        server.stop()
