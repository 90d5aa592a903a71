"""The plan as Kubernetes objects: pure functions from a deployment's run units to JSON.

Each deployment gets its own Deployment per service or worker (``<component>-<deployment[:8]>``) and
its own Secret of the unit's SECRET values (referenced from the pod's env, never written into a
ConfigMap, annotation or the pod spec). The app's stable Service per HTTP service (``<component>``)
selects the live deployment's pods: ``switch_traffic`` moves it, so a new deployment goes live only
once its pods are ready, and one that fails never receives traffic while the old pods keep serving
(blue/green, with shoal's ingress following the Service's endpoints). Jobs are Jobs; autoscaled
services get a HorizontalPodAutoscaler of the version the server offers.

Every object carries the app's, component's and deployment's labels, so what a deployment made can be
found (and removed) by label, and a restarted shoal recognises its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Kind, Probe, RunUnit

Obj = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
APP_ID = "shoal.dev/app-id"
COMPONENT = "shoal.dev/component"
DEPLOYMENT = "shoal.dev/deployment"
ROLE = "shoal.dev/role"  # service | worker | job
# Shared vCPUs are over-committed, as on DigitalOcean: a pod asks the scheduler for a tenth of its size's
# CPU (so a 2-core node runs more than two 1-vCPU instances) and is limited to all of it; memory is
# requested whole (a pod is never placed where its memory does not fit).
SHARED_CPU_REQUEST = 0.1


@dataclass(frozen=True)
class Rendering:
    """What the renderer needs beside the plan: where the app lives and what the server offers."""

    namespace: str
    hpa_api_version: str = "autoscaling/v2"
    ingress_class: str | None = None


def short(deployment_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", deployment_id.lower())[:8] or "0"


def workload_name(unit: RunUnit, deployment_id: str) -> str:
    return f"{unit.name}-{short(deployment_id)}"[:63]


def job_name(unit: RunUnit, deployment_id: str, run: str | None = None) -> str:
    """A deploy-time job's Job is one per deployment (a repeated step finds it); a scheduled run's is its own."""
    base = f"{unit.name}-{short(deployment_id)}"
    return (f"{base}-{run}" if run else base)[:63].rstrip("-")


def secret_name(unit: RunUnit, deployment_id: str) -> str:
    return f"{unit.name}-{short(deployment_id)}-env"[:63]


def labels(plan: AppPlan, unit: RunUnit, role: str) -> dict[str, str]:
    return {MANAGED_BY: "shoal", APP_ID: plan.app_id, COMPONENT: unit.name, DEPLOYMENT: plan.deployment_id,
            ROLE: role}


def pod_selector(plan: AppPlan, unit: RunUnit) -> dict[str, str]:
    return {APP_ID: plan.app_id, COMPONENT: unit.name, DEPLOYMENT: plan.deployment_id}


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def probe(check: Probe | None) -> Obj | None:
    """A readiness/liveness check as a Kubernetes probe (HTTP GET on the path, else a TCP connect)."""
    if check is None:
        return None
    action: Obj = ({"httpGet": {"path": check.http_path, "port": check.port}} if check.http_path
                   else {"tcpSocket": {"port": check.port}})
    return {**action, "initialDelaySeconds": math.ceil(check.initial_delay_seconds),
            "periodSeconds": _seconds(check.period_seconds), "timeoutSeconds": _seconds(check.timeout_seconds),
            "successThreshold": check.success_threshold, "failureThreshold": check.failure_threshold}


def resources(unit: RunUnit) -> Obj:
    """The instance size as requests and limits."""
    if unit.size is None:
        return {}
    cpu_request = unit.size.cpus if unit.size.cpu_type == "DEDICATED" else unit.size.cpus * SHARED_CPU_REQUEST
    memory = str(unit.size.memory_bytes)
    return {"requests": {"cpu": f"{max(1, round(cpu_request * 1000))}m", "memory": memory},
            "limits": {"cpu": f"{max(1, round(unit.size.cpus * 1000))}m", "memory": memory}}


def env_entries(env: Mapping[str, str], secret_keys: frozenset[str], secret: str) -> list[Obj]:
    """Plain values inline; SECRET values only as references to the unit's Secret."""
    entries: list[Obj] = []
    for key in sorted(env):
        if key in secret_keys:
            entries.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        else:
            entries.append({"name": key, "value": env[key]})
    return entries


def secret_object(plan: AppPlan, unit: RunUnit, env: Mapping[str, str], secret_keys: frozenset[str],
                  how: Rendering) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name(unit, plan.deployment_id), "namespace": how.namespace,
                         "labels": labels(plan, unit, "env")},
            "stringData": {k: env[k] for k in sorted(secret_keys) if k in env}}


def container(unit: RunUnit, image: str, env: Mapping[str, str], secret_keys: frozenset[str],
              deployment_id: str) -> Obj:
    found: Obj = {"name": unit.name, "image": image, "imagePullPolicy": "IfNotPresent",
                  "env": env_entries(env, secret_keys, secret_name(unit, deployment_id))}
    if unit.run_command:
        found["command"] = ["/bin/sh", "-c", unit.run_command]
    if unit.kind == Kind.SERVICE:
        port = unit.http_port or DEFAULT_HTTP_PORT
        found["ports"] = [{"name": "http", "containerPort": port}] + [
            {"name": f"internal-{p}", "containerPort": p} for p in unit.internal_ports if p != port]
    for key, check in (("readinessProbe", unit.readiness), ("livenessProbe", unit.liveness)):
        if (rendered := probe(check)) is not None:
            found[key] = rendered
    if (limits := resources(unit)):
        found["resources"] = limits
    if unit.kind == Kind.SERVICE and unit.termination.drain_seconds > 0:
        # Requests already on their way finish before SIGTERM (reference §4.2's drain).
        found["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(_seconds(unit.termination.drain_seconds))]}}}
    return found


def deployment_object(plan: AppPlan, unit: RunUnit, image: str, env: Mapping[str, str],
                      secret_keys: frozenset[str], how: Rendering) -> Obj:
    """A service's or worker's Deployment: ``instance_count`` replicas, rolled without losing one."""
    role = "service" if unit.kind == Kind.SERVICE else "worker"
    pod_labels = labels(plan, unit, role)
    grace = _seconds(unit.termination.grace_period_seconds + unit.termination.drain_seconds)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": workload_name(unit, plan.deployment_id), "namespace": how.namespace,
                         "labels": pod_labels},
            "spec": {"replicas": unit.instance_count, "selector": {"matchLabels": pod_selector(plan, unit)},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                     "progressDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [container(unit, image, env, secret_keys,
                                                                    plan.deployment_id)],
                                           "terminationGracePeriodSeconds": grace,
                                           "enableServiceLinks": False}}}}


def service_object(plan: AppPlan, unit: RunUnit, how: Rendering) -> Obj:
    """The component's stable Service, selecting ``plan``'s pods (applied when the deployment goes live)."""
    port = unit.http_port or DEFAULT_HTTP_PORT
    ports = [{"name": "http", "port": port, "targetPort": port}] + [
        {"name": f"internal-{p}", "port": p, "targetPort": p} for p in unit.internal_ports if p != port]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": unit.name, "namespace": how.namespace,
                         "labels": {MANAGED_BY: "shoal", APP_ID: plan.app_id, COMPONENT: unit.name}},
            "spec": {"selector": pod_selector(plan, unit), "ports": ports}}


def hpa_object(plan: AppPlan, unit: RunUnit, how: Rendering) -> Obj | None:
    """Autoscaling between the spec's bounds on CPU (the metric a cluster has without adapters)."""
    scaling = unit.autoscaling
    if scaling is None:
        return None
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": scaling.cpu_percent}}}] if scaling.cpu_percent else []
    return {"apiVersion": how.hpa_api_version, "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": workload_name(unit, plan.deployment_id), "namespace": how.namespace,
                         "labels": labels(plan, unit, "autoscaling")},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": workload_name(unit, plan.deployment_id)},
                     "minReplicas": scaling.min_instances, "maxReplicas": scaling.max_instances,
                     **({"metrics": metrics} if metrics else {})}}


def job_object(plan: AppPlan, unit: RunUnit, image: str, env: Mapping[str, str], secret_keys: frozenset[str],
               how: Rendering, run: str | None = None) -> Obj:
    """One run of a job: no retries (DigitalOcean runs a job once), its timeout as the deadline."""
    job_labels = labels(plan, unit, "job")
    body: Obj = {"backoffLimit": 0,
                 "template": {"metadata": {"labels": job_labels},
                              "spec": {"restartPolicy": "Never", "enableServiceLinks": False,
                                       "terminationGracePeriodSeconds": _seconds(unit.termination.grace_period_seconds),
                                       "containers": [container(unit, image, env, secret_keys,
                                                                plan.deployment_id)]}}}
    if unit.timeout_seconds:
        body["activeDeadlineSeconds"] = _seconds(unit.timeout_seconds)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(unit, plan.deployment_id, run), "namespace": how.namespace,
                         "labels": job_labels},
            "spec": body}


def ingress_object(plan: AppPlan, how: Rendering) -> Obj | None:
    """With ``--kube-ingress-class``: the app's hosts and routes for the cluster's own ingress controller."""
    if how.ingress_class is None:
        return None
    services = {u.name: u.http_port or DEFAULT_HTTP_PORT for u in plan.units if u.kind == Kind.SERVICE}
    paths = [{"path": route.prefix or "/", "pathType": "Prefix",
              "backend": {"service": {"name": route.component, "port": {"number": services[route.component]}}}}
             for route in plan.routes if route.component in services and route.redirect is None]
    hosts = [h for h in plan.hosts if not h.startswith("*.")] or [""]
    rules = [{**({"host": host} if host else {}), "http": {"paths": paths}} for host in hosts]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "app", "namespace": how.namespace,
                         "labels": {MANAGED_BY: "shoal", APP_ID: plan.app_id}},
            "spec": {"ingressClassName": how.ingress_class, "rules": rules if paths else []}}
