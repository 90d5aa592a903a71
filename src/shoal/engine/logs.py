"""Which log lines a logs request means, whether they can still grow, and reading them."""

from __future__ import annotations

from dataclasses import dataclass

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.logs import LogLine
from shoal.domain.plan import units_of
from shoal.domain.ports import DeploymentStore
from shoal.engine.deployments import DeploymentsService

TYPE_STAGES: dict[str, frozenset[str]] = {
    "BUILD": frozenset({"BUILD"}),
    "DEPLOY": frozenset({"DEPLOY"}),
    "RUN": frozenset({"RUN"}),
    "RUN_RESTARTED": frozenset({"RUN_RESTARTED"}),
    "UNSPECIFIED": frozenset({"BUILD", "DEPLOY", "RUN"}),
    "JOB_INVOCATION": frozenset({"DEPLOY", "RUN", "JOB_INVOCATION"}),
    "AUTOSCALE_EVENT": frozenset({"AUTOSCALE_EVENT"}),
}


@dataclass(frozen=True)
class LogSelection:
    app_id: str
    deployment_id: str
    stages: frozenset[str]
    component: str | None
    tail_lines: int | None
    live: bool


def _stage_ran(dep: Deployment, stages: frozenset[str]) -> bool:
    """Whether the stage ran or still may (a deployment in progress can be followed ahead of a stage)."""
    if stages == TYPE_STAGES["BUILD"]:
        return dep.restart_components is None and (not dep.terminal or dep.phase != Phase.CANCELED
                                                   or dep.progress[0]["status"] != "PENDING")
    if not dep.terminal:
        return True
    if stages == TYPE_STAGES["DEPLOY"]:
        return dep.phase in (Phase.DEPLOYING, Phase.ACTIVE, Phase.SUPERSEDED) or \
            any(s["name"] == "deploy" and s["status"] != "PENDING" for s in dep.progress)
    if stages & {"RUN", "RUN_RESTARTED"} and not stages & {"BUILD"}:
        return dep.phase in (Phase.DEPLOYING, Phase.ACTIVE, Phase.SUPERSEDED)
    return True


def stage_open(dep: Deployment, stages: frozenset[str]) -> bool:
    """Whether more lines of these stages can still come (then a live URL is offered)."""
    if stages <= TYPE_STAGES["BUILD"]:
        return dep.phase in (Phase.PENDING_BUILD, Phase.BUILDING)
    if stages <= TYPE_STAGES["DEPLOY"]:
        return not dep.terminal
    return dep.phase == Phase.ACTIVE or not dep.terminal


class LogsService:
    def __init__(self, deployments: DeploymentsService, store: DeploymentStore) -> None:
        self._deployments = deployments
        self._store = store

    def select(self, account: Account, app_id: str, deployment_id: str | None, component: str | None,
               log_type: str | None, tail_lines: int | None) -> LogSelection:
        kind = (log_type or "UNSPECIFIED").upper()
        if kind not in TYPE_STAGES:
            raise BadRequest(f"unknown log type {log_type!r}; use one of {', '.join(TYPE_STAGES)}")
        if deployment_id is None:
            app = self._deployments.app(account, app_id)
            if not app.active_deployment_id:
                raise BadRequest(f"app {app.id} has no active deployment yet; ask for a deployment's logs instead")
            deployment_id = app.active_deployment_id
        dep = self._deployments.get_deployment(account, app_id, deployment_id)
        names = {c.name for c in units_of(dep.spec)}
        if component and component not in names:
            raise NotFound(f"component {component!r} is not part of deployment {dep.id}")
        stages = TYPE_STAGES[kind]
        if kind == "AUTOSCALE_EVENT":
            raise BadRequest("no AUTOSCALE_EVENT logs: shoal does not autoscale, so no autoscaling event ran")
        if not _stage_ran(dep, stages):
            raise BadRequest(f"no {kind} logs: that stage has not run for deployment {dep.id}")
        return LogSelection(app_id=dep.app_id, deployment_id=dep.id, stages=stages, component=component or None,
                            tail_lines=tail_lines if tail_lines and tail_lines > 0 else None,
                            live=stage_open(dep, stages))

    def read(self, selection: LogSelection, after_id: int = 0) -> list[tuple[int, LogLine]]:
        lines = self._store.read_logs(selection.deployment_id, set(selection.stages), selection.component, after_id)
        if after_id == 0 and selection.tail_lines:
            lines = lines[-selection.tail_lines:]
        return lines

    def still_open(self, selection: LogSelection) -> bool:
        dep = self._store.deployment_by_id(selection.deployment_id)
        return dep is not None and stage_open(dep, selection.stages)
