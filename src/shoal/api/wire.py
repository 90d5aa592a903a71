"""Wire shapes of shoal's records, exactly as DigitalOcean's OpenAPI names them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shoal.core.clock import rfc3339
from shoal.domain import progress
from shoal.domain.accounts import Account
from shoal.domain.apps import AppView
from shoal.domain.deployments import Deployment
from shoal.domain.plan import DEPLOYMENT_LISTS
from shoal.spec.catalog import default_region, find_region

# The steps DigitalOcean reports for a domain, in order (do-app-platform.md §2.1). Until the
# ingress configures a domain, every step is honestly still pending.
DOMAIN_STEPS = ("default-ingress-ready", "ensure-certificate", "create-deployment")


@dataclass(frozen=True)
class IngressAddress:
    scheme: str
    port: int

    def url(self, host: str) -> str:
        default_port = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" if self.port == default_port else f"{self.scheme}://{host}:{self.port}"


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
    domains = [_domain_wire(app.id, d) for d in app.spec.get("domains") or []]
    if domains:
        wire["domains"] = domains
    if app.last_deployment_created_at:
        wire["last_deployment_created_at"] = rfc3339(app.last_deployment_created_at)
    if app.last_deployment_active_at:
        wire["last_deployment_active_at"] = rfc3339(app.last_deployment_active_at)
    for key, dep in (("active_deployment", view.active), ("in_progress_deployment", view.in_progress),
                     ("pending_deployment", view.pending), ("pinned_deployment", view.pinned)):
        if dep is not None:
            wire[key] = deployment_wire(dep)
    if view.active is not None:
        # Live once a deployment has gone live: the default ingress until custom domains are served.
        live = ingress.url(app.ingress_host)
        wire.update(live_url=live, live_url_base=live, live_domain=app.ingress_host)
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
        "timing": {k: v for k, v in dep.timing.items() if not k.startswith("_")},
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


def _domain_wire(app_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:domain:{app_id}:{spec.get('domain')}")),
        "spec": spec,
        "phase": "PENDING",
        "progress": {"steps": [{"name": name, "status": "PENDING"} for name in DOMAIN_STEPS]},
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
