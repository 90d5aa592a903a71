"""The plan rendered as Kubernetes objects: what each field becomes, and every object valid against the
current Kubernetes schemas offline (``kubernetes-validate``, strict: unknown fields are errors too)."""

from __future__ import annotations

from typing import Any

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from shoal.domain.plan import AppPlan, make_plan  # noqa: E402
from shoal.runtime.kubernetes import render  # noqa: E402
from shoal.runtime.kubernetes.apply import with_merge_keys  # noqa: E402
from shoal.runtime.kubernetes.environment import unit_env  # noqa: E402

IMAGE = {"image": {"registry_type": "DOCKER_HUB", "registry": "acme", "repository": "web", "tag": "1"}}
SPEC: dict[str, Any] = {
    "name": "shop", "region": "nyc",
    "envs": [{"key": "SHARED", "value": "yes"}],
    "services": [{"name": "web", **IMAGE, "run_command": "serve --port $PORT", "http_port": 8081,
                  "instance_count": 2, "instance_size_slug": "apps-s-1vcpu-1gb", "internal_ports": [9090],
                  "health_check": {"http_path": "/health", "period_seconds": 2, "failure_threshold": 3},
                  "liveness_health_check": {"port": 9090},
                  "termination": {"drain_seconds": 5, "grace_period_seconds": 20},
                  "envs": [{"key": "TOKEN", "value": "s3cr3t", "type": "SECRET"},
                           {"key": "API", "value": "${api.PRIVATE_URL}"}]},
                 {"name": "api", **IMAGE, "autoscaling": {"min_instance_count": 2, "max_instance_count": 4,
                                                          "metrics": {"cpu": {"percent": 70}}},
                  "instance_size_slug": "apps-d-1vcpu-2gb"}],
    "workers": [{"name": "queue", **IMAGE}],
    "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **IMAGE, "run_command": "migrate"}],
    "ingress": {"rules": [{"match": {"path": {"prefix": "/api"}}, "component": {"name": "api"}},
                          {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]},
}
HOW = render.Rendering(namespace="shoal-app-1", ingress_class="nginx")


@pytest.fixture(scope="module")
def plan() -> AppPlan:
    return make_plan(SPEC, app_id="app-1", deployment_id="0a1b2c3d-0001", account_id="acct",
                     default_host="shop.example.test")


def objects(plan: AppPlan) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for unit in plan.units:
        env, secret = unit_env(plan, unit, None)
        image = "registry.example/acme/web@sha256:" + "0" * 64
        if unit.runs_continuously:
            found += [render.secret_object(plan, unit, env, secret, HOW)] if secret else []
            found.append(render.deployment_object(plan, unit, image, env, secret, HOW))
            found += [o for o in [render.hpa_object(plan, unit, HOW)] if o]
            if unit.kind.value == "service":
                found.append(render.service_object(plan, unit, HOW))
        else:
            found.append(render.job_object(plan, unit, image, env, secret, HOW, run=None))
    found += [o for o in [render.ingress_object(plan, HOW)] if o]
    return [with_merge_keys(o) for o in found]


def test_every_rendered_object_is_valid_for_current_kubernetes(plan: AppPlan) -> None:
    rendered = objects(plan)
    assert sorted({o["kind"] for o in rendered}) == ["Deployment", "HorizontalPodAutoscaler", "Ingress", "Job",
                                                     "Secret", "Service"]
    for obj in rendered:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def by(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in rendered if o["kind"] == kind and o["metadata"]["name"] == name)


def test_a_service_becomes_a_deployment_that_never_drops_below_its_instances(plan: AppPlan) -> None:
    deployment = by(objects(plan), "Deployment", "web-0a1b2c3d")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 25  # the grace period after the drain
    main = pod["containers"][0]
    assert main["command"] == ["/bin/sh", "-c", "serve --port $PORT"]
    assert [p["containerPort"] for p in main["ports"]] == [8081, 9090]
    assert main["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8081}
    assert (main["readinessProbe"]["periodSeconds"], main["readinessProbe"]["failureThreshold"]) == (2, 3)
    assert main["livenessProbe"]["tcpSocket"] == {"port": 9090}
    assert main["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert main["resources"] == {"requests": {"cpu": "100m", "memory": str(1 << 30)},
                                 "limits": {"cpu": "1000m", "memory": str(1 << 30)}}


def test_secrets_reach_pods_only_through_a_secret(plan: AppPlan) -> None:
    rendered = objects(plan)
    secret = by(rendered, "Secret", "web-0a1b2c3d-env")
    assert secret["stringData"] == {"TOKEN": "s3cr3t"}
    env = {e["name"]: e for e in by(rendered, "Deployment", "web-0a1b2c3d")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["TOKEN"] == {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-0a1b2c3d-env",
                                                                            "key": "TOKEN"}}}
    assert env["SHARED"]["value"] == "yes" and env["PORT"]["value"] == "8081"
    assert env["API"]["value"] == "http://api:8080"  # the stable Service, as pods reach each other
    assert all("s3cr3t" not in str(o) for o in rendered if o["kind"] != "Secret")


def test_autoscaling_dedicated_cpu_workers_jobs_and_the_ingress(plan: AppPlan) -> None:
    rendered = objects(plan)
    hpa = by(rendered, "HorizontalPodAutoscaler", "api-0a1b2c3d")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert by(rendered, "Deployment", "api-0a1b2c3d")["spec"]["replicas"] == 2
    api = by(rendered, "Deployment", "api-0a1b2c3d")["spec"]["template"]["spec"]["containers"][0]
    assert api["resources"]["requests"]["cpu"] == api["resources"]["limits"]["cpu"]  # dedicated: all of it
    queue = by(rendered, "Deployment", "queue-0a1b2c3d")["spec"]["template"]["spec"]["containers"][0]
    assert "ports" not in queue and "command" not in queue  # the image's own entrypoint
    job = by(rendered, "Job", "migrate-0a1b2c3d")
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    service = by(rendered, "Service", "web")
    assert service["spec"]["selector"] == {render.APP_ID: "app-1", render.COMPONENT: "web",
                                           render.DEPLOYMENT: "0a1b2c3d-0001"}
    ingress = by(rendered, "Ingress", "app")
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert ingress["spec"]["rules"][0]["host"] == "shop.example.test"
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/api", "api"), ("/", "web")]


def test_a_scheduled_run_gets_a_job_of_its_own() -> None:
    spec = {"name": "cron", "jobs": [{"name": "tick", "kind": "SCHEDULED", **IMAGE, "schedule": {"cron": "* * * * *"}}]}
    plan = make_plan(spec, app_id="a", deployment_id="dep-1")
    unit = plan.units[0]
    assert render.job_name(unit, "dep-1") == "tick-dep1"
    assert render.job_name(unit, "dep-1", "20261201120000") == "tick-dep1-20261201120000"
