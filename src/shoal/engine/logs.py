"""Which log lines a logs request means, whether they can still grow, and reading them.

As on DigitalOcean, a live URL is handed out only when the client asks to follow (``follow=true``)
and the lines can still grow; otherwise the answer is the historic URL alone, which doctl reads to
the end and returns (``doctl apps logs --type run`` without ``--follow``). A job invocation's logs
are the lines its job wrote while that invocation ran, and they end when it has finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain import jobs
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.logs import LogLine
from shoal.domain.plan import units_of
from shoal.domain.ports import DeploymentStore, JobStore
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
    invocation_id: str | None = None  # a job invocation's logs: only the lines it wrote
    since: datetime | None = None
    until: datetime | None = None


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
        # A deployment that failed while deploying ran its instances: their lines are kept (the
        # failure message points at them), so they are served like any other deployment's.
        return dep.phase in (Phase.DEPLOYING, Phase.ACTIVE, Phase.SUPERSEDED) or _deploy_began(dep)
    return True


def _deploy_began(dep: Deployment) -> bool:
    return any(s["name"] == "deploy" and s["status"] != "PENDING" for s in dep.progress)


def stage_open(dep: Deployment, stages: frozenset[str]) -> bool:
    """Whether more lines of these stages can still come (then a live URL is offered)."""
    if stages <= TYPE_STAGES["BUILD"]:
        return dep.phase in (Phase.PENDING_BUILD, Phase.BUILDING)
    if stages <= TYPE_STAGES["DEPLOY"]:
        return not dep.terminal
    return dep.phase == Phase.ACTIVE or not dep.terminal


class LogsService:
    def __init__(self, deployments: DeploymentsService, store: DeploymentStore, job_store: JobStore) -> None:
        self._deployments = deployments
        self._store = store
        self._jobs = job_store

    def select_invocation(self, account: Account, invocation: jobs.JobInvocation, tail_lines: int | None,
                          follow: bool) -> LogSelection:
        """The lines one job invocation wrote; live only while it still runs and the client follows."""
        found = self.select(account, invocation.app_id, invocation.deployment_id, invocation.job_name,
                            "JOB_INVOCATION", tail_lines, follow)
        return LogSelection(app_id=found.app_id, deployment_id=found.deployment_id, stages=found.stages,
                            component=found.component, tail_lines=found.tail_lines,
                            live=follow and invocation.phase not in jobs.FINISHED, invocation_id=invocation.id,
                            since=invocation.started_at or invocation.created_at, until=invocation.completed_at)

    def select(self, account: Account, app_id: str, deployment_id: str | None, component: str | None,
               log_type: str | None, tail_lines: int | None, follow: bool = False) -> LogSelection:
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
        if kind == "AUTOSCALE_EVENT" and dep.phase not in (Phase.ACTIVE, Phase.SUPERSEDED):
            raise BadRequest(f"no AUTOSCALE_EVENT logs: deployment {dep.id} never went live, so nothing scaled it")
        if not _stage_ran(dep, stages):
            raise BadRequest(f"no {kind} logs: that stage has not run for deployment {dep.id}")
        return LogSelection(app_id=dep.app_id, deployment_id=dep.id, stages=stages, component=component or None,
                            tail_lines=tail_lines if tail_lines and tail_lines > 0 else None,
                            live=follow and stage_open(dep, stages))

    def read(self, selection: LogSelection, after_id: int = 0) -> list[tuple[int, LogLine]]:
        lines = self._store.read_logs(selection.deployment_id, set(selection.stages), selection.component, after_id)
        since, until = selection.since, selection.until
        if since is not None or until is not None:
            lines = [(i, line) for i, line in lines
                     if (since is None or line.ts >= since) and (until is None or line.ts <= until)]
        if after_id == 0 and selection.tail_lines:
            lines = lines[-selection.tail_lines:]
        return lines

    def still_open(self, selection: LogSelection) -> bool:
        if selection.invocation_id is not None:
            invocation = self._jobs.get_invocation(selection.app_id, selection.invocation_id)
            return invocation is not None and invocation.phase not in jobs.FINISHED
        dep = self._store.deployment_by_id(selection.deployment_id)
        return dep is not None and stage_open(dep, selection.stages)
