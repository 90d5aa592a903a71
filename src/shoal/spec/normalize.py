"""Reshape a valid spec into what DigitalOcean returns for it (reference §4.12).

Input is the models' dump of a spec that passed every rule; output is what GET /v2/apps/{id}
would show. Normalising is idempotent — re-submitting a spec read back means the same thing —
which the property tests pin. Only what DigitalOcean echoes is filled in here (``http_port``,
env ``scope``, the autoscaling CPU target, component routes as ingress rules); the defaults it
applies only when running stay out of the spec (``shoal.spec.defaults``), or Terraform shows
drift after every apply.

Decisions the reference leaves open:

- Component ``routes``/``cors`` become ``ingress.rules`` (as DigitalOcean's responses do, tf PR
  #1053), appended after any rules the user wrote. A component ``cors`` with no routes of its
  own is attached to the user's rules that target that component and carry no ``cors`` (or to
  the default ``/`` rule); with no rule to carry it, it has nothing to apply to and is dropped.
- When nothing routes at all and exactly one component can take HTTP traffic, it gets ``/``.
- A service that lists ``internal_ports`` but no ``http_port`` stays private (no 8080 default)
  unless it has routes: then it gets 8080, as any routed service (DigitalOcean does not refuse it).
"""

from __future__ import annotations

import copy
from typing import Any

from shoal.spec.defaults import DEFAULT_ENV_SCOPE, resolve_region
from shoal.spec.rules.compute import DEFAULT_HTTP_PORT

Json = dict[str, Any]

ROUTABLE_KINDS = ("services", "static_sites", "functions")
__all__ = ["normalize", "resolve_region"]


def normalize(spec: Json) -> Json:
    """The normalised spec. Takes ownership of ``spec`` (a fresh model dump) and reshapes it in place,
    because deep-copying dominated the cost of ``check`` on large specs."""
    out = spec
    _fill_envs(out)
    for service in out.get("services", []):
        _fill_compute(service)
        routed = bool(service.get("routes")) or service.get("cors") is not None
        if "http_port" not in service and (not service.get("internal_ports") or routed):
            service["http_port"] = DEFAULT_HTTP_PORT  # a private service with routes is routed on 8080
    for worker in out.get("workers", []):
        _fill_compute(worker)
    for job in out.get("jobs", []):
        _fill_compute(job)
    _routes_to_ingress(out)
    return _ordered(out)


def _ordered(spec: Json) -> Json:
    """Name first, as people write specs and DigitalOcean echoes them; values are unchanged."""
    for kind in (*ROUTABLE_KINDS, "workers", "jobs", "databases"):
        if kind in spec:
            spec[kind] = [{"name": c["name"], **c} for c in spec[kind]]
    return {"name": spec["name"], **spec}


def _fill_envs(spec: Json) -> None:
    holders = [spec, *(c for kind in (*ROUTABLE_KINDS, "workers", "jobs") for c in spec.get(kind, []))]
    for holder in holders:
        for env in holder.get("envs", []):
            if env.get("scope", "UNSET") == "UNSET":
                env["scope"] = DEFAULT_ENV_SCOPE


def _fill_compute(component: Json) -> None:
    autoscaling = component.get("autoscaling")
    if autoscaling is not None:
        cpu = autoscaling.get("metrics", {}).get("cpu")
        if cpu is not None:
            cpu.setdefault("percent", 80)


def _routes_to_ingress(spec: Json) -> None:
    ingress: Json = spec.get("ingress", {})
    rules: list[Json] = list(ingress.get("rules", []))
    derived: list[Json] = []
    lone_cors: dict[str, Json] = {}
    for kind in ROUTABLE_KINDS:
        for component in spec.get(kind, []):
            routes = component.pop("routes", [])
            cors = component.pop("cors", None)
            derived.extend(_route_rule(component["name"], route, cors) for route in routes)
            if cors is not None and not routes:
                lone_cors[component["name"]] = cors
    for rule in rules:
        target = rule.get("component", {}).get("name")
        if target in lone_cors and "cors" not in rule:
            rule["cors"] = copy.deepcopy(lone_cors[target])
    rules.extend(derived)
    if not rules:
        rules = _default_rules(spec, lone_cors)
    if rules:
        spec["ingress"] = {**ingress, "rules": rules}


def _route_rule(name: str, route: Json, cors: Json | None) -> Json:
    target: Json = {"name": name}
    if route.get("preserve_path_prefix"):
        target["preserve_path_prefix"] = True
    rule: Json = {"match": {"path": {"prefix": route["path"]}}, "component": target}
    if cors is not None:
        rule["cors"] = copy.deepcopy(cors)
    return rule


def _default_rules(spec: Json, lone_cors: dict[str, Json]) -> list[Json]:
    routable = [
        component["name"]
        for kind in ROUTABLE_KINDS
        for component in spec.get(kind, [])
        if kind != "services" or "http_port" in component
    ]
    if len(routable) != 1:
        return []
    rule: Json = {"match": {"path": {"prefix": "/"}}, "component": {"name": routable[0]}}
    if routable[0] in lone_cors:
        rule["cors"] = copy.deepcopy(lone_cors[routable[0]])
    return [rule]
