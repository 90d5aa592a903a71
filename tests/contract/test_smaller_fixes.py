"""Issue 13 item 7 through pydo and godo-shaped requests: instance sizes' tier links, cancelling
what has ended, deploy-time job triggers, and query values godo never sends."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import error_body, service_spec, unique_name, wait_deployment
from tests.live import LiveServer

GIT = {"repo_clone_url": "https://example.com/repo.git", "branch": "main"}


def test_instance_sizes_name_their_tier_upgrade_and_downgrade(client: Any) -> None:
    sizes = {s["slug"]: s for s in client.apps.list_instance_sizes()["instance_sizes"]}
    assert sizes["basic-xs"]["tier_upgrade_to"] == "professional-xs"
    assert sizes["professional-xs"]["tier_downgrade_to"] == "basic-xs"
    assert sizes["apps-s-1vcpu-1gb-fixed"]["tier_upgrade_to"] == "apps-s-1vcpu-1gb"
    assert "tier_upgrade_to" not in sizes["apps-d-1vcpu-1gb"]  # nothing of that shape on another tier
    one = client.apps.get_instance_size("apps-s-1vcpu-1gb")["instance_size"]
    assert one["tier_downgrade_to"] == "apps-s-1vcpu-1gb-fixed"


def test_cancelling_what_has_ended_is_refused_and_deploy_jobs_name_their_user(client: Any) -> None:
    spec = {**service_spec(unique_name("jobs")), "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", "git": GIT}]}
    app = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    [invocation] = client.apps.list_job_invocations(app["id"])["job_invocations"]
    user = dep["cause_details"]["digitalocean_user_action"]["user"]
    assert invocation["trigger"] == {"type": "MANUAL", "manual": {"user": user}}
    with pytest.raises(HttpResponseError) as raised:
        client.apps.cancel_job_invocation(app["id"], invocation["id"])
    assert raised.value.status_code == 400 and "already ended (SUCCEEDED)" in error_body(raised.value)["message"]
    [event] = client.apps.list_events(app["id"])["events"]
    with pytest.raises(HttpResponseError) as raised:
        client.apps.cancel_event(app["id"], event["id"])
    assert raised.value.status_code == 400 and "already ended" in error_body(raised.value)["message"]
    assert client.apps.get_job_invocation(app["id"], invocation["id"])["job_invocation"]["phase"] == "SUCCEEDED"
    client.apps.delete(app["id"])


@pytest.mark.parametrize("query", ["per_page=", "page=", "per_page=x", "with_projects=", "with_projects=2"])
def test_query_values_go_never_sends_are_refused(server: LiveServer, query: str) -> None:
    with server.http() as http:
        answer = http.get(f"/v2/apps?{query}")
    assert answer.status_code == 400 and query.split("=")[0] in answer.json()["message"]


def test_godo_null_bodies_are_still_accepted_where_godo_sends_them(client: Any, server: LiveServer) -> None:
    app = client.apps.create(body={"spec": service_spec(unique_name("null"))})["app"]
    wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    with server.http() as http:
        for path in (f"/v2/apps/{app['id']}/deployments", f"/v2/apps/{app['id']}/restart"):
            answer = http.post(path, content=b"null", headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text
        refused = http.put(f"/v2/apps/{app['id']}", content=b"null", headers={"content-type": "application/json"})
        assert refused.status_code == 400
    client.apps.delete(app["id"])
