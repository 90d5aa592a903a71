"""kill -9 during each phase of a deployment: after a restart every deployment ends, every app is intact."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TERMINAL, service_spec, unique_name, wait_deployment, wait_for
from tests.contract.test_deployments import full_spec
from tests.live import LiveServer


@pytest.mark.parametrize("phase", ["PENDING_BUILD", "BUILDING", "DEPLOYING"])
def test_sigkill_during_a_phase_then_restart(fresh_server_factory: Any, phase: str) -> None:
    server: LiveServer = fresh_server_factory("--simulate-step-seconds", "0.4")
    client = server.client()
    live = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    wait_deployment(client, live["id"], live["pending_deployment"]["id"])
    # One app mid-update (an active deployment serving, a new one in flight) and one brand new.
    updated = client.apps.update(live["id"], body={"spec": service_spec(live["spec"]["name"], run_command="v2")})
    fresh = client.apps.create(body={"spec": full_spec(unique_name())})["app"]
    watched = [(live["id"], updated["app"]["pending_deployment"]["id"]),
               (fresh["id"], fresh["pending_deployment"]["id"])]
    if phase != "PENDING_BUILD":
        wait_for(lambda: client.apps.get_deployment(*watched[1])["deployment"]["phase"] == phase, timeout=30,
                 interval=0.02)

    server.kill()
    server.start()
    client = server.client()
    for app_id, dep_id in watched:
        dep = wait_deployment(client, app_id, dep_id, timeout=60)
        assert dep["phase"] == "ACTIVE", dep.get("progress")
        assert dep["progress"]["success_steps"] == dep["progress"]["total_steps"]
    app = client.apps.get(live["id"])["app"]
    assert app["spec"]["services"][0]["run_command"] == "v2"
    assert app["active_deployment"]["id"] == watched[0][1]
    for app_id in (live["id"], fresh["id"]):
        phases = {d["phase"] for d in client.apps.list_deployments(app_id)["deployments"]}
        assert phases <= TERMINAL
    assert client.apps.get(fresh["id"])["app"]["spec"]["name"] == fresh["spec"]["name"]
