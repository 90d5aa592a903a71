"""Alerts and log destinations: which rules fit which component, one kind per destination."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec.models.logs import LOG_DESTINATION_KINDS
from shoal.spec.problems import Problem
from shoal.spec.rules.view import COMPONENT_KINDS, Json, components, entries, obj, text

PAPERTRAIL_HOST_PORT_RE = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
LOG_NAME_RE = re.compile(r"""^[A-Za-z0-9()\[\]'"][-A-Za-z0-9_. /()\[\]]{0,40}[A-Za-z0-9()\[\]'"]$""")

_INSTANCE_RULES = frozenset({"CPU_UTILIZATION", "MEM_UTILIZATION", "RESTART_COUNT"})
APP_ALERT_RULES = frozenset({
    "DEPLOYMENT_FAILED", "DEPLOYMENT_LIVE", "DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELED",
    "DOMAIN_FAILED", "DOMAIN_LIVE", "AUTOSCALE_FAILED", "AUTOSCALE_SUCCEEDED",
})
COMPONENT_ALERT_RULES: dict[str, frozenset[str]] = {
    "services": _INSTANCE_RULES | {"REQUESTS_PER_SECOND", "REQUEST_DURATION_P95_MS"},
    "workers": _INSTANCE_RULES,
    "jobs": _INSTANCE_RULES | {"JOB_INVOCATION_FAILED"},
    "functions": frozenset({
        "FUNCTIONS_ACTIVATION_COUNT", "FUNCTIONS_AVERAGE_DURATION_MS", "FUNCTIONS_ERROR_RATE_PER_MINUTE",
        "FUNCTIONS_AVERAGE_WAIT_TIME_MS", "FUNCTIONS_ERROR_COUNT", "FUNCTIONS_GB_RATE_PER_SECOND",
    }),
}


def check_observability(spec: Json) -> Iterator[Problem]:
    yield from _alert_problems("", spec, APP_ALERT_RULES, "app-level alerts")
    for kind, path, component in components(spec, COMPONENT_KINDS):
        if kind in COMPONENT_ALERT_RULES:
            yield from _alert_problems(path, component, COMPONENT_ALERT_RULES[kind], kind)
        for log_path, destination in entries(component, "log_destinations", path):
            yield from _log_problems(log_path, destination)


def _alert_problems(base: str, holder: Json, allowed: frozenset[str], owner: str) -> Iterator[Problem]:
    for path, alert in entries(holder, "alerts", base):
        rule = text(alert, "rule")
        # UNSPECIFIED_RULE (or none) is the enum's default and Terraform's component alerts accept
        # it: an alert that watches nothing yet, not a refusal (issue 13 item 6).
        if rule is not None and rule != "UNSPECIFIED_RULE" and rule not in allowed:
            yield Problem(f"{path}.rule", f"{rule} is not available for {owner}; use one of {', '.join(sorted(allowed))}")


def _log_problems(path: str, destination: Json) -> Iterator[Problem]:
    name = text(destination, "name")
    if name is not None and not LOG_NAME_RE.match(name):
        yield Problem(f"{path}.name", f'"{name[:64]}" must be 2 to 42 letters, digits, spaces or -_./()[]\'"')
    kinds = [k for k in LOG_DESTINATION_KINDS if destination.get(k) is not None]
    if len(kinds) != 1:
        found = f"found {len(kinds)}: {', '.join(kinds)}" if kinds else "found none"
        yield Problem(path, f"exactly one of {', '.join(LOG_DESTINATION_KINDS)} must be set, {found}")
    open_search = obj(destination, "open_search")
    if open_search is not None:
        yield from _open_search_problems(f"{path}.open_search", open_search)
    endpoint = text(obj(destination, "datadog") or {}, "endpoint")
    if endpoint is not None and not endpoint.startswith(("https://", "http://")):
        yield Problem(f"{path}.datadog.endpoint", "must be a URL")
    endpoint = text(obj(destination, "papertrail") or {}, "endpoint")
    # Papertrail endpoints are seen as URLs and as a bare logs.papertrailapp.com:12345 (runtime
    # reference §4.1); the port is always part of it.
    if endpoint is not None and not (endpoint.startswith(("https://", "http://", "syslog+tls://", "syslog://"))
                                     or PAPERTRAIL_HOST_PORT_RE.match(endpoint)):
        yield Problem(f"{path}.papertrail.endpoint", "must be a URL or host:port")
    yield from _endpoint_problems(path, destination)


def _endpoint_problems(path: str, destination: Json) -> Iterator[Problem]:
    """godo's generic destination: an http(s) URL, header names that are HTTP tokens and values
    without line breaks (they go on the wire as they are)."""
    endpoint = text(destination, "endpoint")
    if endpoint is not None and not endpoint.startswith(("https://", "http://")):
        yield Problem(f"{path}.endpoint", "must be an http:// or https:// URL")
    if destination.get("endpoint") is None:
        for key in ("headers", "tls_insecure"):
            if destination.get(key) is not None:
                yield Problem(f"{path}.{key}", "applies only to a generic destination (set endpoint)")
    for header_path, header in entries(destination, "headers", path):
        yield from header_problems(header_path, header)


HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def header_problems(path: str, header: Json, value_required: bool = False) -> Iterator[Problem]:
    """A header ``{key, value}`` that can be written on the wire as it is."""
    key, value = text(header, "key"), text(header, "value")
    if header.get("key") is None:
        yield Problem(f"{path}.key", "is required")
    elif key is not None and not HEADER_NAME_RE.match(key):
        yield Problem(f"{path}.key", f'"{key[:64]}" is not an HTTP header name')
    if value is not None and any(c in value for c in "\r\n\0"):
        yield Problem(f"{path}.value", "must not contain line breaks")
    elif value_required and header.get("value") is None:
        yield Problem(f"{path}.value", "is required unless remove_header is true")


def _open_search_problems(path: str, config: Json) -> Iterator[Problem]:
    endpoint, cluster = text(config, "endpoint"), text(config, "cluster_name")
    if (config.get("endpoint") is None) == (config.get("cluster_name") is None):
        yield Problem(path, "exactly one of endpoint or cluster_name must be set")
    if endpoint is not None and not endpoint.startswith("https://"):
        yield Problem(f"{path}.endpoint", "must be an https://<host>:<port> URL")
    auth = obj(config, "basic_auth")
    if cluster and auth is not None and auth.get("password") is not None:
        yield Problem(f"{path}.basic_auth.password", "cannot be set when using a DigitalOcean cluster (cluster_name)")
