"""Deployments through pydo in simulate mode: phases, progress, concurrency, cancel, failure, rollback, restart."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import error_body, leaves, service_spec, unique_name, wait_deployment, wait_for
from tests.live import LiveServer


def full_spec(name: str, **web: Any) -> dict[str, Any]:
    spec = service_spec(name, **web)
    spec["workers"] = [{"name": "queue", "git": {"repo_clone_url": "https://example.com/repo.git", "branch": "main"}}]
    spec["jobs"] = [
        {"name": "migrate", "kind": "PRE_DEPLOY", "git": {"repo_clone_url": "https://example.com/repo.git"}},
        {"name": "notify", "kind": "POST_DEPLOY", "git": {"repo_clone_url": "https://example.com/repo.git"}},
        {"name": "cleanup", "kind": "FAILED_DEPLOY", "git": {"repo_clone_url": "https://example.com/repo.git"}},
    ]
    spec["static_sites"] = [{"name": "docs", "git": {"repo_clone_url": "https://example.com/repo.git"}}]
    return spec


def failing(name: str, point: str) -> dict[str, Any]:
    return service_spec(name, envs=[{"key": "SHOAL_SIMULATE_FAIL", "value": point}])


def test_create_deploys_to_active_with_every_step_done(client: Any) -> None:
    created = client.apps.create(body={"spec": full_spec(unique_name())})["app"]
    pending = created["pending_deployment"]
    assert pending["phase"] == "PENDING_BUILD" and pending["cause"] == "app created"
    assert pending["progress"]["total_steps"] > 6 and pending["progress"]["pending_steps"] > 0
    dep = wait_deployment(client, created["id"], pending["id"])
    assert dep["phase"] == "ACTIVE"
    progress = dep["progress"]
    assert progress["success_steps"] == progress["total_steps"] and progress["error_steps"] == 0
    assert [s["name"] for s in progress["steps"]] == ["build", "deploy"]
    assert all(s["status"] == "SUCCESS" for s in progress["steps"])
    deploy = {s["name"]: s for s in progress["steps"][1]["steps"]}
    assert list(deploy) == ["initialize", "pre_deploy", "components", "post_deploy", "failed_deploy", "finalize"]
    # The FAILED_DEPLOY job never ran, and its step is not left pending (Terraform waits on every step).
    assert deploy["failed_deploy"]["status"] == "SUCCESS"
    web = next(s for s in deploy["components"]["steps"] if s["name"] == "web")
    assert [s["name"] for s in web["steps"]] == ["deploy", "wait"]
    assert web["steps"][0]["message_base"] == "Deploying service"
    assert dep["services"][0]["name"] == "web" and len(dep["services"][0]["source_commit_hash"]) == 40
    assert {w["name"] for w in dep["workers"]} == {"queue"} and dep["static_sites"][0]["name"] == "docs"
    assert dep["timing"]["build_total"].endswith("s")

    app = client.apps.get(created["id"])["app"]
    assert app["active_deployment"]["id"] == dep["id"]
    assert app["live_url"] == app["default_ingress"] and app["live_domain"] in app["live_url"]
    assert "in_progress_deployment" not in app and app["last_deployment_active_at"]


def test_update_redeploys_and_the_old_deployment_is_superseded(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": service_spec(name)})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    updated = client.apps.update(created["id"], body={"spec": service_spec(name, run_command="gunicorn app")})["app"]
    second = updated["pending_deployment"]
    assert second["id"] != first["id"] and second["cause"] == "app spec updated"
    assert wait_deployment(client, created["id"], second["id"])["phase"] == "ACTIVE"
    assert client.apps.get_deployment(created["id"], first["id"])["deployment"]["phase"] == "SUPERSEDED"
    listed = client.apps.list_deployments(created["id"])
    assert [d["id"] for d in listed["deployments"]] == [second["id"], first["id"]]  # newest first
    assert listed["meta"]["total"] == 2


def test_create_deployment_restart_and_type_filter(client: Any) -> None:
    created = client.apps.create(body={"spec": full_spec(unique_name())})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    manual = client.apps.create_deployment(created["id"], body={"force_build": True})["deployment"]
    assert manual["cause"] == "manual"
    assert wait_deployment(client, created["id"], manual["id"])["phase"] == "ACTIVE"

    restart = client.apps.restart(created["id"], body={"components": ["web"]})["deployment"]
    done = wait_deployment(client, created["id"], restart["id"])
    assert done["phase"] == "ACTIVE" and [s["name"] for s in done["services"]] == ["web"]
    assert "workers" not in done  # only the named component restarts
    assert done["cause_details"]["digitalocean_user_action"]["name"] == "RESTART"
    with pytest.raises(HttpResponseError) as raised:
        client.apps.restart(created["id"], body={"components": ["nope"]})
    assert raised.value.status_code == 400 and "nope" in error_body(raised.value)["message"]
    manual_only = client.apps.list_deployments(created["id"], deployment_types=["MANUAL_ROLLBACK"])
    assert manual_only["deployments"] == [] and manual_only["meta"]["total"] == 0


def test_injected_build_failure_ends_in_error_and_the_previous_deployment_keeps_serving(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": service_spec(name)})["app"]
    good = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    bad = client.apps.update(created["id"], body={"spec": failing(name, "build")})["app"]["pending_deployment"]
    failed = wait_deployment(client, created["id"], bad["id"])
    assert failed["phase"] == "ERROR"
    assert failed["progress"]["error_steps"] > 0
    build = failed["progress"]["steps"][0]
    assert build["status"] == "ERROR"
    step = build["steps"][1]["steps"][0]
    assert step["reason"]["code"] == "BuildJobExitNonZero" and "web" in step["reason"]["message"]
    app = client.apps.get(created["id"])["app"]
    assert app["active_deployment"]["id"] == good["id"] and app["active_deployment"]["phase"] == "ACTIVE"


@pytest.mark.parametrize(("point", "code"), [("health", "ContainerHealthChecksFailed"), ("job", "ContainerExitNonZero")])
def test_deploy_stage_failures_run_failed_deploy_jobs(client: Any, point: str, code: str) -> None:
    spec = full_spec(unique_name())
    target = spec["services"][0] if point == "health" else spec["jobs"][0]
    target["envs"] = [{"key": "SHOAL_SIMULATE_FAIL", "value": point}]
    created = client.apps.create(body={"spec": spec})["app"]
    failed = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    assert failed["phase"] == "ERROR"
    reasons = [s.get("reason", {}).get("code") for s in leaves(failed["progress"]["steps"])]
    assert code in reasons
    deploy = {s["name"]: s for s in failed["progress"]["steps"][1]["steps"]}
    assert deploy["failed_deploy"]["status"] == "SUCCESS"  # the FAILED_DEPLOY job ran
    invocations = client.apps.list_job_invocations(created["id"], job_names=["cleanup"])["job_invocations"]
    assert [i["phase"] for i in invocations] == ["SUCCEEDED"]
    assert "live_url" not in client.apps.get(created["id"])["app"]



def test_rollback_pins_then_commit_and_revert(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": service_spec(name, run_command="v1")})["app"]
    v1 = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    v2_id = client.apps.update(created["id"], body={"spec": service_spec(name, run_command="v2")})[
        "app"]["pending_deployment"]["id"]
    wait_deployment(client, created["id"], v2_id)

    assert client.apps.validate_rollback(created["id"], body={"deployment_id": v1["id"]}) == {"valid": True}
    assert client.apps.validate_rollback(created["id"], body={"deployment_id": v2_id})["valid"] is True
    rollback = client.apps.create_rollback(created["id"], body={"deployment_id": v1["id"]})["deployment"]
    assert rollback["cause_details"]["type"] == "MANUAL_ROLLBACK" and rollback["cloned_from"] == v1["id"]
    wait_deployment(client, created["id"], rollback["id"])
    app = client.apps.get(created["id"])["app"]
    assert app["pinned_deployment"]["id"] == rollback["id"]
    assert app["spec"]["services"][0]["run_command"] == "v1"
    # Pinned: new deployments are refused, and validation says why.
    with pytest.raises(HttpResponseError) as raised:
        client.apps.create_deployment(created["id"], body={})
    assert raised.value.status_code == 409 and "pinned" in error_body(raised.value)["message"]
    check = client.apps.validate_rollback(created["id"], body={"deployment_id": v1["id"]})
    assert check["valid"] is False and check["error"]["code"] == "app_pinned"

    reverted = client.apps.revert_rollback(created["id"])["deployment"]
    assert wait_deployment(client, created["id"], reverted["id"])["spec"]["services"][0]["run_command"] == "v2"
    app = client.apps.get(created["id"])["app"]
    assert "pinned_deployment" not in app and app["spec"]["services"][0]["run_command"] == "v2"

    again = client.apps.create_rollback(created["id"], body={"deployment_id": v1["id"]})["deployment"]
    wait_deployment(client, created["id"], again["id"])
    assert client.apps.commit_rollback(created["id"]) is None  # 200 with an empty body
    app = client.apps.get(created["id"])["app"]
    assert "pinned_deployment" not in app and app["spec"]["services"][0]["run_command"] == "v1"
    # After a commit, revert still answers with a new deployment (as DigitalOcean's does).
    assert client.apps.revert_rollback(created["id"])["deployment"]["id"]


def test_rollback_to_a_failed_deployment_is_refused(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": failing(name, "build")})["app"]
    failed = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    check = client.apps.validate_rollback(created["id"], body={"deployment_id": failed["id"]})
    assert check["valid"] is False and check["error"]["code"] == "incompatible_result"
    with pytest.raises(HttpResponseError) as raised:
        client.apps.create_rollback(created["id"], body={"deployment_id": failed["id"]})
    assert raised.value.status_code == 400 and "incompatible_result" in error_body(raised.value)["message"]


def test_unknown_deployments_are_404(client: Any) -> None:
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    assert client.apps.get_deployment(created["id"], "00000000-0000-4000-8000-000000000000")["id"] == "not_found"
    assert client.apps.cancel_deployment(created["id"], "nope")["id"] == "not_found"
    assert client.apps.list_deployments("00000000-0000-4000-8000-000000000000")["id"] == "not_found"


def test_cancel_a_finished_deployment_answers_it_unchanged(client: Any) -> None:
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    assert client.apps.cancel_deployment(created["id"], dep["id"])["deployment"]["phase"] == "ACTIVE"


def test_slow_deployments_supersede_and_cancel(fresh_server_factory: Any) -> None:
    server: LiveServer = fresh_server_factory("--simulate-step-seconds", "0.3")
    client = server.client()
    name = unique_name()
    created = client.apps.create(body={"spec": service_spec(name)})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"])

    second = client.apps.update(created["id"], body={"spec": service_spec(name, run_command="two")})["app"]
    wait_for(lambda: client.apps.get(created["id"])["app"].get("in_progress_deployment"))
    third = client.apps.update(created["id"], body={"spec": service_spec(name, run_command="three")})["app"]
    assert client.apps.get_deployment(created["id"], second["pending_deployment"]["id"])[
        "deployment"]["phase"] == "SUPERSEDED"
    canceled = client.apps.cancel_deployment(created["id"], third["pending_deployment"]["id"])["deployment"]
    assert canceled["phase"] == "CANCELED"
    assert all(s["status"] != "RUNNING" for s in leaves(canceled["progress"]["steps"]))
    app = client.apps.get(created["id"])["app"]
    assert app["active_deployment"]["id"] == first["id"] and app["active_deployment"]["phase"] == "ACTIVE"
    # Still canceled a moment later: the engine does not resurrect it.
    import time

    time.sleep(1)
    assert client.apps.get_deployment(created["id"], canceled["id"])["deployment"]["phase"] == "CANCELED"


def test_archiving_walks_the_phases_and_stops_every_component(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": full_spec(name)})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    archived = {**full_spec(name), "maintenance": {"archive": True}}
    pending = client.apps.update(created["id"], body={"spec": archived})["app"]["pending_deployment"]
    dep = wait_deployment(client, created["id"], pending["id"])
    assert dep["phase"] == "ACTIVE"
    build, deploy = dep["progress"]["steps"]
    assert [s["name"] for s in build["steps"]] == ["initialize"]  # nothing is built
    assert [s["name"] for s in deploy["steps"]] == ["initialize", "components", "finalize"]  # no jobs run
    assert [(s["name"], [c["name"] for c in s["steps"]]) for s in deploy["steps"][1]["steps"]] == [
        ("web", ["stop"]), ("queue", ["stop"]), ("docs", ["stop"])]
    assert dep["progress"]["success_steps"] == dep["progress"]["total_steps"] == 6
    assert "services" not in dep and "jobs" not in dep
    with pytest.raises(HttpResponseError, match="archived"):
        client.apps.restart(created["id"], body={})

    back = client.apps.update(created["id"], body={"spec": full_spec(name)})["app"]["pending_deployment"]
    again = wait_deployment(client, created["id"], back["id"])
    assert again["phase"] == "ACTIVE" and again["services"][0]["name"] == "web"
    assert [s["name"] for s in again["progress"]["steps"][1]["steps"]] == [
        "initialize", "pre_deploy", "components", "post_deploy", "failed_deploy", "finalize"]


def test_an_app_with_nothing_to_build_deploys(client: Any) -> None:
    """No component at all: the tree has no empty groups, which used to end the deployment in InternalError."""
    created = client.apps.create(body={"spec": {"name": unique_name()}})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    assert dep["phase"] == "ACTIVE", dep["progress"]
    assert [leaf["name"] for leaf in leaves(dep["progress"]["steps"])] == ["initialize", "initialize", "finalize"]
