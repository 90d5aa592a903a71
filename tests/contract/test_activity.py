"""Events, job invocations, instances, health, alerts and bandwidth through pydo."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import service_spec, unique_name, wait_deployment
from tests.contract.test_deployments import full_spec


def deployed(client: Any, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    created = client.apps.create(body={"spec": spec})["app"]
    return created, wait_deployment(client, created["id"], created["pending_deployment"]["id"])


def test_events_mirror_deployments(client: Any) -> None:
    app, dep = deployed(client, service_spec(unique_name()))
    events = client.apps.list_events(app["id"])
    assert [e["deployment_id"] for e in events["events"]] == [dep["id"]] and events["events"][0]["type"] == "DEPLOYMENT"
    event = client.apps.get_event(app["id"], events["events"][0]["id"])["event"]
    assert event["deployment"]["phase"] == "ACTIVE"
    assert client.apps.list_events(app["id"], event_types=["AUTOSCALING"])["events"] == []
    assert client.apps.get_event(app["id"], "00000000-0000-4000-8000-000000000000")["id"] == "not_found"
    with pytest.raises(HttpResponseError):  # the event has ended: nothing to cancel (test_smaller_fixes.py)
        client.apps.cancel_event(app["id"], event["id"])


def test_deploy_jobs_are_recorded_as_invocations_with_logs(client: Any, server: Any) -> None:
    app, dep = deployed(client, full_spec(unique_name()))
    found = client.apps.list_job_invocations(app["id"])["job_invocations"]
    assert {(i["job_name"], i["phase"]) for i in found} == {("migrate", "SUCCEEDED"), ("notify", "SUCCEEDED")}
    migrate = next(i for i in found if i["job_name"] == "migrate")
    assert migrate["deployment_id"] == dep["id"] and migrate["started_at"] and migrate["completed_at"]
    assert client.apps.get_job_invocation(app["id"], migrate["id"])["job_invocation"]["id"] == migrate["id"]
    assert client.apps.list_job_invocations(app["id"], deployment_id=dep["id"], job_names=["notify"])[
        "job_invocations"][0]["job_name"] == "notify"
    with pytest.raises(HttpResponseError):  # finished invocations cannot be canceled (test_smaller_fixes.py)
        client.apps.cancel_job_invocation(app["id"], migrate["id"])
    logs = client.apps.get_job_invocation_logs(app["id"], "migrate", migrate["id"], type="JOB_INVOCATION")
    with server.http(anonymous=True) as http:
        text = http.get(logs["historic_urls"][0]).text
    assert "migrate" in text and "Job migrate succeeded" in text


def test_instances_and_health(client: Any) -> None:
    spec = service_spec(unique_name(), instance_count=2, instance_size_slug="apps-s-1vcpu-1gb")
    app, _ = deployed(client, spec)
    instances = client.apps.get_instances(app["id"])["instances"]
    assert sorted(i["instance_alias"] for i in instances) == ["web-0", "web-1"]
    assert {i["component_type"] for i in instances} == {"SERVICE"}
    health = client.apps.get_health(app["id"])["app_health"]
    assert health["components"] == [{"name": "web", "cpu_usage_percent": 0, "memory_usage_percent": 0,
                                     "replicas_desired": 2, "replicas_ready": 2, "state": "HEALTHY"}]


def test_alerts_and_destinations(client: Any) -> None:
    spec = service_spec(unique_name(), alerts=[{"rule": "CPU_UTILIZATION", "operator": "GREATER_THAN",
                                                "value": 80, "window": "FIVE_MINUTES"}])
    spec["alerts"] = [{"rule": "DEPLOYMENT_LIVE"}]
    app = client.apps.create(body={"spec": spec})["app"]
    alerts = client.apps.list_alerts(app["id"])["alerts"]
    assert alerts[0]["spec"]["rule"] == "DEPLOYMENT_LIVE"  # the pydo integration test's expectation
    cpu = next(a for a in alerts if a.get("component_name") == "web")
    assigned = client.apps.assign_alert_destinations(app["id"], cpu["id"], body={
        "emails": ["ops@example.com"], "slack_webhooks": [{"url": "https://hooks.slack.com/x", "channel": "ops"}]})
    assert assigned["alert"]["emails"] == ["ops@example.com"]
    again = next(a for a in client.apps.list_alerts(app["id"])["alerts"] if a["id"] == cpu["id"])
    assert again["slack_webhooks"] == [{"url": "https://hooks.slack.com/x", "channel": "ops"}]
    assert client.apps.assign_alert_destinations(app["id"], "00000000-0000-4000-8000-000000000000",
                                                 body={"emails": []})["id"] == "not_found"


def test_bandwidth_metrics_of_an_app_without_traffic_are_zero(client: Any) -> None:
    app = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    one = client.apps.get_metrics_bandwidth_daily(app["id"], date="2026-11-01T00:00:00Z")
    assert one == {"app_bandwidth_usage": [{"app_id": app["id"], "bandwidth_bytes": "0"}],
                   "date": "2026-11-01T00:00:00Z"}
    many = client.apps.list_metrics_bandwidth_daily(body={"app_ids": [app["id"]]})
    assert many["app_bandwidth_usage"][0]["app_id"] == app["id"]
