"""Deployment use cases: create, list, get, cancel, restart, and rollback (validate, create, commit, revert)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from shoal.core.clock import Clock, rfc3339
from shoal.core.errors import BadRequest, NotFound
from shoal.core.ids import is_uuid
from shoal.domain import progress as steps
from shoal.domain.accounts import Account
from shoal.domain.apps import App
from shoal.domain.deployments import DEPLOYMENT_TYPES, MANUAL_ROLLBACK, Deployment, Phase, Trigger
from shoal.domain.plan import archived, running_units
from shoal.domain.ports import AppStore, DeploymentQueue, DeploymentStore, NullQueue
from shoal.engine.apps import refuse_if_pinned, tier_of
from shoal.engine.new_deployments import new_deployment
from shoal.spec.defaults import resolve_region

ROLLBACK_REVISIONS = 10  # DigitalOcean: one of the 10 most recent successful deployments


@dataclass(frozen=True)
class RollbackCheck:
    valid: bool
    error: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


class DeploymentsService:
    def __init__(self, apps: AppStore, store: DeploymentStore, clock: Clock,
                 queue: DeploymentQueue | None = None) -> None:
        self._apps = apps
        self._store = store
        self._clock = clock
        self.queue: DeploymentQueue = queue or NullQueue()

    def app(self, account: Account, app_id: str) -> App:
        app = self._apps.get_app(account.id, app_id) if is_uuid(app_id) else None
        if app is None:
            raise NotFound(f"app {app_id!r} not found")
        return app

    def get_deployment(self, account: Account, app_id: str, deployment_id: str) -> Deployment:
        app = self.app(account, app_id)
        dep = self._store.get_deployment(app.id, deployment_id) if is_uuid(deployment_id) else None
        if dep is None:
            raise NotFound(f"deployment {deployment_id!r} not found")
        return dep

    def list_deployments(self, account: Account, app_id: str, page: int, per_page: int,
                         types: list[str]) -> tuple[list[Deployment], int]:
        unknown = sorted(set(types) - DEPLOYMENT_TYPES)
        if unknown:
            raise BadRequest(f"unknown deployment_types {', '.join(unknown)}; known: {', '.join(sorted(DEPLOYMENT_TYPES))}")
        app = self.app(account, app_id)
        return self._store.list_deployments(app.id, (page - 1) * per_page, per_page, set(types) or None)

    def _add(self, app: App, dep: Deployment) -> Deployment:
        self._store.add_deployment(dep, self._clock.now())
        self.queue.submit(app.id, dep.id)
        return dep

    def create_deployment(self, account: Account, app_id: str, force_build: bool, cause: str = "manual",
                          action: str = "CREATE_DEPLOYMENT") -> Deployment:
        app = self.app(account, app_id)
        refuse_if_pinned(app)
        trigger = Trigger(cause, action=action, force_build=force_build)
        return self._add(app, new_deployment(app, app.spec, trigger, account, self._clock.now(), app.tier_slug))

    def restart(self, account: Account, app_id: str, names: list[str]) -> Deployment:
        app = self.app(account, app_id)
        refuse_if_pinned(app)
        active = self._store.get_deployment(app.id, app.active_deployment_id or "")
        if active is None:
            raise BadRequest(f"app {app.id} has no active deployment to restart")
        if archived(active.spec):
            raise BadRequest(f"app {app.id} is archived: nothing runs to restart (set maintenance.archive to false "
                             "in its spec to start it again)")
        restartable = {c.name for c in running_units(active.spec) if c.runs_continuously}
        unknown = sorted(set(names) - restartable)
        if unknown:
            raise BadRequest(f"cannot restart {', '.join(unknown)}: not a service or worker of the active deployment "
                             f"(restartable: {', '.join(sorted(restartable)) or 'none'})")
        trigger = Trigger("app restart", action="RESTART", restart_components=tuple(names),
                          cloned_from=active.id)
        return self._add(app, new_deployment(app, active.spec, trigger, account, self._clock.now(), active.tier_slug,
                                             built=active.components))

    def cancel_deployment(self, account: Account, app_id: str, deployment_id: str) -> Deployment:
        dep = self.get_deployment(account, app_id, deployment_id)
        for _ in range(10):  # the engine may write in between; re-read and try again
            if dep.terminal:
                return dep  # cancelling a finished deployment answers it unchanged
            now = self._clock.now()
            tree = copy.deepcopy(dep.progress)
            for leaf in steps.leaves(tree):
                if leaf["status"] == steps.RUNNING:
                    leaf.update(status=steps.ERROR, ended_at=rfc3339(now),
                                reason={"code": "DeploymentCanceled", "message": "the deployment was canceled"})
            canceled = replace(dep.moved_to(Phase.CANCELED, now), progress=tree,
                               ended_reason={"code": "DeploymentCanceled", "message": "the deployment was canceled"})
            saved = self._store.save_deployment(canceled)
            if saved is not None:
                self.queue.cancel(dep.app_id, dep.id)
                return saved
            dep = self.get_deployment(account, app_id, deployment_id)
        raise BadRequest("the deployment kept changing; try the cancel again")

    # -- rollback --------------------------------------------------------------------------------

    def validate_rollback(self, account: Account, app_id: str, deployment_id: object,
                          skip_pin: bool = False) -> RollbackCheck:
        app = self.app(account, app_id)
        target = self._rollback_target(app, deployment_id)
        if app.pinned_deployment_id:
            return RollbackCheck(False, _condition("app_pinned", f"app is pinned to deployment "
                                                                 f"{app.pinned_deployment_id}; commit or revert first"))
        if target.phase not in (Phase.ACTIVE, Phase.SUPERSEDED) or not target.progress or \
                steps.counters(target.progress)["error_steps"]:
            code = "incompatible_result" if target.phase == Phase.ERROR else "incompatible_phase"
            return RollbackCheck(False, _condition(code, f"deployment {target.id} in phase {target.phase} "
                                                         "is unsuitable for rollback"))
        recent, _ = self._store.list_deployments(app.id, 0, 1000)
        successful = [d.id for d in recent if d.phase in (Phase.ACTIVE, Phase.SUPERSEDED)
                      and not steps.counters(d.progress)["error_steps"]][:ROLLBACK_REVISIONS]
        if target.id not in successful:
            return RollbackCheck(False, _condition("exceeded_revision_limit",
                                                   f"deployment {target.id} is past the maximum historical revision "
                                                   f"limit of {ROLLBACK_REVISIONS}"))
        if resolve_region(target.spec.get("region")) != resolve_region(app.spec.get("region")):
            return RollbackCheck(False, _condition("region_conflict", "the deployment ran in another region"))
        if _databases(target.spec) != _databases(app.spec):
            return RollbackCheck(False, _condition("database_config_conflict",
                                                   "the deployment's databases differ from the app's"))
        warnings = []
        if target.spec.get("static_sites"):
            warnings.append(_condition("static_site_requires_rebuild", "static sites are rebuilt from source",
                                       [s["name"] for s in target.spec["static_sites"]]))
        return RollbackCheck(True, warnings=warnings)

    def _rollback_target(self, app: App, deployment_id: object) -> Deployment:
        if not isinstance(deployment_id, str) or not deployment_id:
            raise BadRequest("error parsing request body: 'deployment_id' is required and must be a string")
        target = self._store.get_deployment(app.id, deployment_id) if is_uuid(deployment_id) else None
        if target is None:
            raise NotFound(f"deployment {deployment_id!r} not found")
        return target

    def create_rollback(self, account: Account, app_id: str, deployment_id: object, skip_pin: bool) -> Deployment:
        checked = self.validate_rollback(account, app_id, deployment_id, skip_pin)
        if not checked.valid and checked.error:
            raise BadRequest(f"rollback refused ({checked.error['code']}): {checked.error['message']}")
        app = self.app(account, app_id)
        target = self._rollback_target(app, deployment_id)
        now = self._clock.now()
        trigger = Trigger(f"rollback to deployment {target.id}", type=MANUAL_ROLLBACK, action="ROLLBACK_APP",
                          cloned_from=target.id)
        # The earlier deployment's revisions (commits, image digests) are pinned: a rollback runs what it ran.
        revisions = [{"name": c["name"], "source_commit_hash": c["source_commit_hash"]}
                     for c in target.components if c.get("source_commit_hash")]
        dep = new_deployment(app, target.spec, trigger, account, now, target.tier_slug, built=revisions)
        pins: dict[str, str | None] = {} if skip_pin else {
            "pinned_deployment_id": dep.id, "rollback_base_deployment_id": app.active_deployment_id}
        self._apps.update_app_spec(account.id, app.id, target.spec, app.region, now, dep, pins)
        self.queue.submit(app.id, dep.id)
        return dep

    def commit_rollback(self, account: Account, app_id: str) -> None:
        app = self.app(account, app_id)
        self._apps.set_pins(app.id, {"pinned_deployment_id": None, "rollback_base_deployment_id": None})

    def revert_rollback(self, account: Account, app_id: str) -> Deployment:
        """Deploy the spec from before the rollback (or, with nothing pinned, the app's current spec)."""
        app = self.app(account, app_id)
        base = self._store.get_deployment(app.id, app.rollback_base_deployment_id or "")
        spec = base.spec if base is not None else app.spec
        now = self._clock.now()
        trigger = Trigger("revert rollback", type=MANUAL_ROLLBACK, action="REVERT_APP_ROLLBACK",
                          cloned_from=base.id if base else None)
        # Back to exactly what ran before the rollback: the base deployment's revisions are pinned too.
        revisions = [{"name": c["name"], "source_commit_hash": c["source_commit_hash"]}
                     for c in (base.components if base is not None else []) if c.get("source_commit_hash")]
        dep = new_deployment(app, spec, trigger, account, now, tier_of(spec), built=revisions)
        self._apps.update_app_spec(account.id, app.id, spec, app.region, now, dep,
                                   {"pinned_deployment_id": None, "rollback_base_deployment_id": None})
        self.queue.submit(app.id, dep.id)
        return dep


def _condition(code: str, message: str, components_: list[str] | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"code": code, "message": message}
    if components_:
        condition["components"] = components_
    return condition


def _databases(spec: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return sorted((str(d.get("name")), str(d.get("engine")), bool(d.get("production")))
                  for d in spec.get("databases") or [])
