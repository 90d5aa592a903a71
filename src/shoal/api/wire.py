"""Wire shapes of shoal's records, exactly as DigitalOcean's OpenAPI names them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoal.core.clock import rfc3339
from shoal.domain import progress
from shoal.domain.accounts import Account
from shoal.domain.apps import AppView
from shoal.domain.deployments import Deployment
from shoal.domain.plan import DEPLOYMENT_LISTS
from shoal.spec.catalog import default_region, find_region



@dataclass(frozen=True)
class IngressAddress:
    scheme: str
    port: int
    tls_port: int | None = None  # the HTTPS ingress listener, when there is one

    def url(self, host: str) -> str:
        default_port = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" if self.port == default_port else f"{self.scheme}://{host}:{self.port}"

    def domain_url(self, host: str) -> str:
        """A custom domain's URL: HTTPS when shoal serves TLS, as DigitalOcean's edge does."""
        if self.tls_port is None:
            return self.url(host)
        return f"https://{host}" if self.tls_port == 443 else f"https://{host}:{self.tls_port}"


def app_wire(view: AppView, ingress: IngressAddress, with_project: bool = True) -> dict[str, Any]:
    app = view.app
    region = find_region(app.region) or default_region()
    wire: dict[str, Any] = {
        "id": app.id,
        "owner_uuid": app.account_id,
        "spec": app.spec,
        "default_ingress": ingress.url(app.ingress_host),
        "created_at": rfc3339(app.created_at),
        "updated_at": rfc3339(app.updated_at),
        "region": region.as_wire(),
        "tier_slug": app.tier_slug,
    }
    if with_project:
        wire["project_id"] = app.project_id
    live_domains = {str(d.get("domain")) for d in (view.active.spec.get("domains") or [])} if view.active else set()
    domains = [_domain_wire(app.id, d, d.get("domain") in live_domains, ingress.tls_port is not None)
               for d in app.spec.get("domains") or []]
    if domains:
        wire["domains"] = domains
    if app.build_config:
        wire["build_config"] = app.build_config
    if (app.spec.get("egress") or {}).get("type") == "DEDICATED_IP":
        wire["dedicated_ips"] = dedicated_ips(app.id)
    if app.last_deployment_created_at:
        wire["last_deployment_created_at"] = rfc3339(app.last_deployment_created_at)
    if app.last_deployment_active_at:
        wire["last_deployment_active_at"] = rfc3339(app.last_deployment_active_at)
    for key, dep in (("active_deployment", view.active), ("in_progress_deployment", view.in_progress),
                     ("pending_deployment", view.pending), ("pinned_deployment", view.pinned)):
        if dep is not None:
            wire[key] = deployment_wire(dep)
    if view.active is not None:
        # Live once a deployment has gone live: at the PRIMARY domain if the live spec has one.
        primary = next((str(d["domain"]) for d in view.active.spec.get("domains") or []
                        if d.get("type") == "PRIMARY" and d.get("domain")), None)
        live = ingress.domain_url(primary) if primary else ingress.url(app.ingress_host)
        wire.update(live_url=live, live_url_base=live, live_domain=primary or app.ingress_host)
    return wire


def deployment_wire(dep: Deployment) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": dep.id,
        "spec": dep.spec,
        "phase": dep.phase.value,
        "phase_last_updated_at": rfc3339(dep.phase_last_updated_at),
        "created_at": rfc3339(dep.created_at),
        "updated_at": rfc3339(dep.updated_at),
        "cause": dep.cause,
        "cause_details": dep.cause_details,
        "progress": progress.wire(dep.progress),
        "tier_slug": dep.tier_slug,
        "timing": timing_wire(dep),
    }
    for entry in dep.components:
        key = DEPLOYMENT_LISTS.get(entry["kind"])
        if key:
            wire.setdefault(key, []).append({"name": entry["name"], "source_commit_hash": entry["source_commit_hash"]})
    if dep.cloned_from:
        wire["cloned_from"] = dep.cloned_from
    if dep.previous_deployment_id:
        wire["previous_deployment_id"] = dep.previous_deployment_id
    return wire


def _seconds(step: dict[str, Any]) -> str | None:
    start, end = step.get("started_at"), step.get("ended_at")
    if not start or not end or progress.ZERO_TIME in (start, end):
        return None
    elapsed = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{max(elapsed, 0):.3f}s"


def timing_wire(dep: Deployment) -> dict[str, Any]:
    """godo's ``DeploymentTiming``: the stored phase durations, plus each component's build and the
    databases' provisioning read off the progress tree's step times (protobuf duration strings)."""
    timing: dict[str, Any] = {k: v for k, v in dep.timing.items() if not k.startswith("_")}
    built = [{"name": step["name"], "build_billable": took} for step in _children(dep.progress, "build", "components")
             if (took := _seconds(step)) is not None]
    if built:
        timing["components"] = built
    databases = next((s for s in _children(dep.progress, "deploy") if s["name"] == "databases"), None)
    if databases is not None and (took := _seconds(databases)) is not None:
        timing["database_provision"] = took
    return timing


def _children(steps: list[dict[str, Any]], *path: str) -> list[dict[str, Any]]:
    for name in path:
        steps = next((s.get("steps") or [] for s in steps if s["name"] == name), [])
    return steps


def dedicated_ips(app_id: str) -> list[dict[str, str]]:
    """``egress.type: DEDICATED_IP``: shoal's egress is this machine's, so the app is shown one stable
    address from TEST-NET-1 (RFC 5737, never routed) rather than an empty list clients wait on."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:dedicated-ip:{app_id}")
    return [{"ip": f"192.0.2.{1 + digest.int % 254}", "id": str(digest), "status": "ASSIGNED"}]


def _domain_wire(app_id: str, spec: dict[str, Any], live: bool, tls: bool) -> dict[str, Any]:
    """A domain's status as shoal really handled it: routed once a deployment serving it is live,
    with a certificate from the local CA when the HTTPS ingress runs (none is needed otherwise)."""
    steps = [("default-ingress-ready", live), ("create-deployment", live)]
    if tls:
        steps.insert(1, ("ensure-certificate", live))
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:domain:{app_id}:{spec.get('domain')}")),
        "spec": spec,
        "phase": "ACTIVE" if live else "PENDING",
        "progress": {"steps": [{"name": name, "status": "SUCCESS" if done else "PENDING"} for name, done in steps]},
    }


def account_wire(account: Account) -> dict[str, Any]:
    return {
        "droplet_limit": 0,
        "floating_ip_limit": 0,
        "volume_limit": 0,
        "email": account.email,
        "name": account.name,
        "uuid": account.id,
        "email_verified": True,
        "status": "active",
        "status_message": "",
        "team": {"uuid": account.team_uuid, "name": account.name},
    }
