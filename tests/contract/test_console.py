"""Exec URLs through pydo and doctl's requests on the simulate runtime (issue 13 item 1); the
local runtime's real shells are in ``tests/e2e/test_client_local.py``."""

from __future__ import annotations

from typing import Any

from tests.conftest import service_spec, unique_name, wait_deployment
from tests.doctl_console import DoctlConsole, exec_url
from tests.live import LiveServer


def test_simulate_console_says_why_there_is_no_shell_and_ends_cleanly(server: LiveServer, client: Any) -> None:
    app = client.apps.create(body={"spec": service_spec(unique_name("exec"))})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    url = client.apps.get_exec_active_deployment(app["id"], "web")["url"]
    assert url.startswith("wss://") and "token=" in url
    assert client.apps.get_exec(app["id"], dep["id"], "web")["url"].startswith("wss://")
    session = DoctlConsole(url, server.ca)
    try:
        assert session.wait_closed() == 1000  # a normal closure: doctl exits cleanly
        assert "simulate runtime" in session.output and "no shell" in session.output
    finally:
        session.close()
    client.apps.delete(app["id"])


def test_exec_before_anything_is_live_and_for_unknown_apps(server: LiveServer, client: Any) -> None:
    assert exec_url(server, "00000000-0000-4000-8000-000000000000", "web").status_code == 404
    app = client.apps.create(body={"spec": {**service_spec(unique_name("exec")),
                                            "maintenance": {"archive": True}}})["app"]
    wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    archived = exec_url(server, app["id"], "web")  # an archived app runs nothing
    assert archived.status_code == 404 and "not running" in archived.json()["message"]
    client.apps.delete(app["id"])
