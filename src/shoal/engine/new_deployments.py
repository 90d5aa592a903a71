"""Making a new deployment record from a spec and what triggered it (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shoal.core.ids import new_uuid
from shoal.domain.accounts import Account
from shoal.domain.apps import App
from shoal.domain.deployments import Deployment, Phase, Trigger
from shoal.domain.plan import running_units, stopped_units
from shoal.domain.progress import build_tree


def cause_details(trigger: Trigger, account: Account) -> dict[str, Any]:
    return {
        "type": trigger.type,
        "digitalocean_user_action": {
            "user": {"uuid": account.id, "email": account.email, "full_name": account.name},
            "name": trigger.action,
        },
    }


def new_deployment(app: App, spec: dict[str, Any], trigger: Trigger, account: Account, now: datetime,
                   tier_slug: str, built: list[dict[str, Any]] | None = None) -> Deployment:
    """A new deployment of ``spec``. ``built`` carries the components of the deployment whose
    builds a restart reuses: their commits and artefacts."""
    parts, kept_stopped = running_units(spec), stopped_units(spec)
    if trigger.restart_components is not None:
        wanted = set(trigger.restart_components)
        parts = tuple(p for p in parts if p.runs_continuously and (not wanted or p.name in wanted))
        kept_stopped = ()
    reused = {c["name"]: c for c in built or []}
    return Deployment(
        id=new_uuid(), app_id=app.id, account_id=app.account_id, spec=spec, phase=Phase.PENDING_BUILD,
        phase_last_updated_at=now, created_at=now, updated_at=now, cause=trigger.cause,
        cause_details=cause_details(trigger, account), progress=build_tree(parts, kept_stopped),
        components=[{"name": p.name, "kind": str(p.kind),
                     "source_commit_hash": reused.get(p.name, {}).get("source_commit_hash", ""),
                     **({"artifact": reused[p.name]["artifact"]} if reused.get(p.name, {}).get("artifact") else {})}
                    for p in parts if p.builds],
        previous_deployment_id=app.active_deployment_id, cloned_from=trigger.cloned_from,
        force_build=trigger.force_build,
        restart_components=list(trigger.restart_components) if trigger.restart_components is not None else None,
        tier_slug=tier_slug,
    )
