"""Events and job invocations of an app.

Every deployment is an event of type DEPLOYMENT, its id derived from the deployment's; every change
the autoscaler (or inactivity sleep) made is an event of type AUTOSCALING, stored as such
(``ScaleEventStore``). Listings are newest first, both kinds together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from shoal.core.clock import Clock
from shoal.core.errors import BadRequest, NotFound
from shoal.core.ids import is_uuid
from shoal.domain import jobs
from shoal.domain.accounts import Account
from shoal.domain.deployments import Deployment
from shoal.domain.ports import DeploymentStore, JobStore, ScaleEventStore
from shoal.domain.scaling import ScaleEvent
from shoal.engine.deployments import DeploymentsService

EVENT_TYPES = frozenset({"UNKNOWN", "DEPLOYMENT", "AUTOSCALING"})


def event_id(deployment_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:event:{deployment_id}"))


@dataclass(frozen=True)
class Event:
    id: str
    deployment: Deployment  # the deployment it is, or (AUTOSCALING) the one that was scaled
    autoscaling: ScaleEvent | None = None

    @property
    def type(self) -> str:
        return "AUTOSCALING" if self.autoscaling else "DEPLOYMENT"


class EventsService:
    def __init__(self, deployments: DeploymentsService, store: DeploymentStore, job_store: JobStore,
                 clock: Clock, scale_events: ScaleEventStore | None = None) -> None:
        self._scale_events = scale_events
        self._deployments = deployments
        self._store = store
        self._jobs = job_store
        self._clock = clock

    def list_events(self, account: Account, app_id: str, page: int, per_page: int,
                    types: list[str]) -> tuple[list[Event], int]:
        unknown = sorted(set(types) - EVENT_TYPES)
        if unknown:
            raise BadRequest(f"unknown event_types {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}")
        wanted = set(types) - {"UNKNOWN"} if types else {"DEPLOYMENT", "AUTOSCALING"}
        app = self._deployments.app(account, app_id)
        found = [e for e in self._events(app.id) if e.type in wanted]
        return found[(page - 1) * per_page: page * per_page], len(found)

    def _events(self, app_id: str) -> list[Event]:
        deps, _ = self._store.list_deployments(app_id, 0, 100_000)
        events = [Event(event_id(d.id), d) for d in deps]
        scaled = self._scale_events.scale_events(app_id) if self._scale_events else []
        if scaled:
            by_id = {d.id: d for d in deps}
            events += [Event(s.id, by_id[s.deployment_id], s) for s in scaled if s.deployment_id in by_id]
            events.sort(key=lambda e: e.autoscaling.created_at if e.autoscaling else e.deployment.created_at,
                        reverse=True)
        return events

    def get_event(self, account: Account, app_id: str, wanted: str) -> Event:
        app = self._deployments.app(account, app_id)
        for event in self._events(app.id):
            if event.id == wanted:
                return event
        raise NotFound(f"event {wanted!r} not found")

    def cancel_event(self, account: Account, app_id: str, wanted: str) -> Event:
        event = self.get_event(account, app_id, wanted)
        if event.autoscaling is not None or event.deployment.terminal:
            raise BadRequest(f"event {wanted} has already ended: only an event in progress can be canceled")
        dep = self._deployments.cancel_deployment(account, app_id, event.deployment.id)
        return Event(event.id, dep)

    def list_job_invocations(self, account: Account, app_id: str, page: int, per_page: int,
                             deployment_id: str | None, job_names: list[str]) -> tuple[list[jobs.JobInvocation], int]:
        app = self._deployments.app(account, app_id)
        return self._jobs.list_invocations(app.id, (page - 1) * per_page, per_page, deployment_id or None,
                                           job_names or None)

    def get_job_invocation(self, account: Account, app_id: str, invocation_id: str,
                           job_name: str | None = None) -> jobs.JobInvocation:
        app = self._deployments.app(account, app_id)
        found = self._jobs.get_invocation(app.id, invocation_id) if is_uuid(invocation_id) else None
        if found is None or (job_name and found.job_name != job_name):
            raise NotFound(f"job invocation {invocation_id!r} not found")
        return found

    def cancel_job_invocation(self, account: Account, app_id: str, invocation_id: str,
                              job_name: str | None = None) -> jobs.JobInvocation:
        found = self.get_job_invocation(account, app_id, invocation_id, job_name)
        if found.phase in jobs.FINISHED:
            raise BadRequest(f"job invocation {invocation_id} has already ended ({found.phase}): only a pending or "
                             "running invocation can be canceled")
        canceled = replace(found, phase=jobs.CANCELED, completed_at=self._clock.now())
        self._jobs.save_invocation(canceled)
        return canceled
