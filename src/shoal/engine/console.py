"""The console use case (``apps_get_exec`` / ``apps_get_exec_active_deployment``): which instance a
console request means, and opening a shell in it through the runtime.

``doctl apps console APP COMPONENT [INSTANCE] [--deployment ID]`` asks for an exec URL, then dials
it (runtime reference §6). The URL is a ticket for one instance: the API signs it short-lived and
it is good for one session only, since the token in its query is the only credential doctl sends.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain.deployments import Phase
from shoal.domain.plan import Kind, running_units
from shoal.domain.ports import Console, Runtime
from shoal.engine.deployments import DeploymentsService

CONSOLE_KINDS = (Kind.SERVICE, Kind.WORKER)
TICKET_SECONDS = 60  # doctl dials right after asking; a leaked URL is useless a minute later


@dataclass(frozen=True)
class ConsoleTicket:
    app_id: str
    deployment_id: str
    component: str
    instance: str
    nonce: str


class ConsoleService:
    def __init__(self, deployments: DeploymentsService, runtime: Runtime | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._deployments = deployments
        self._runtime = runtime
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce → when it stops mattering (its ticket has expired)

    def ticket(self, account: Account, app_id: str, deployment_id: str | None, component: str,
               instance_name: str | None) -> ConsoleTicket:
        app = self._deployments.app(account, app_id)
        if deployment_id is None:
            if not app.active_deployment_id:
                raise BadRequest(f"app {app.id} has no active deployment yet: nothing runs to open a console in")
            deployment_id = app.active_deployment_id
        dep = self._deployments.get_deployment(account, app.id, deployment_id)
        if dep.phase not in (Phase.ACTIVE, Phase.DEPLOYING):
            raise BadRequest(f"deployment {dep.id} is {dep.phase}: its instances are not running")
        unit = next((u for u in running_units(dep.spec) if u.name == component), None)
        if unit is None:
            raise NotFound(f"component {component!r} is not running in deployment {dep.id}")
        if unit.kind not in CONSOLE_KINDS:
            raise BadRequest(f"{component} is a {unit.kind.value.replace('_', ' ')}: only services and workers "
                             "run instances to open a console in")
        # What really runs now (the runtime's answer, as /instances gives it), first instance first.
        names = sorted(i.name for i in (self._runtime.instances(app.id) if self._runtime else [])
                       if i.deployment_id == dep.id and i.component == component)
        if not names:
            raise NotFound(f"no instance of {component} is running in deployment {dep.id}")
        if instance_name and instance_name not in names:
            raise NotFound(f"instance {instance_name!r} is not a running instance of {component} "
                           f"(instances: {', '.join(names)})")
        return ConsoleTicket(app.id, dep.id, component, instance_name or names[0], secrets.token_urlsafe(12))

    def redeem(self, ticket: ConsoleTicket, ttl: float = TICKET_SECONDS) -> None:
        """A ticket opens one session: a second dial with the same URL is refused."""
        now = self._clock()
        self._used = {n: until for n, until in self._used.items() if until > now}
        if ticket.nonce in self._used:
            raise BadRequest("this console URL was used already; ask the API for a new one")
        self._used[ticket.nonce] = now + ttl

    async def open(self, ticket: ConsoleTicket) -> Console:
        runtime = self._runtime
        if runtime is None:
            raise BadRequest("this server runs no runtime, so there is no instance to open a console in")
        return await runtime.open_console(ticket.app_id, ticket.deployment_id, ticket.component, ticket.instance)
