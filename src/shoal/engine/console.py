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
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.plan import Component, running
from shoal.domain.ports import Console, Runtime
from shoal.engine.deployments import DeploymentsService

CONSOLE_KINDS = ("service", "worker")
TICKET_SECONDS = 60  # doctl dials right after asking; a leaked URL is useless a minute later


@dataclass(frozen=True)
class ConsoleTicket:
    app_id: str
    deployment_id: str
    component: str
    instance: str
    nonce: str


def instance_names(app_name: str, dep: Deployment, part: Component) -> list[str]:
    """The instances a deployment runs for a component, named as the runtimes and ``/instances``
    name them (``<app>-<component>-<deployment[:8]>-<i>``)."""
    spec = part.spec
    count = int(spec.get("instance_count") or (spec.get("autoscaling") or {}).get("min_instance_count") or 1)
    return [f"{app_name}-{part.name}-{dep.id[:8]}-{i}" for i in range(count)]


class ConsoleService:
    def __init__(self, deployments: DeploymentsService, runtime: Callable[[], Runtime | None],
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
        part = next((p for p in running(dep.spec) if p.name == component), None)
        if part is None:
            raise NotFound(f"component {component!r} is not running in deployment {dep.id}")
        if part.kind not in CONSOLE_KINDS:
            raise BadRequest(f"{component} is a {part.kind.replace('_', ' ')}: only services and workers run "
                             "instances to open a console in")
        names = instance_names(app.name, dep, part)
        if instance_name and instance_name not in names:
            raise NotFound(f"instance {instance_name!r} is not an instance of {component} "
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
        runtime = self._runtime()
        if runtime is None:
            raise BadRequest("this server runs no runtime, so there is no instance to open a console in")
        return await runtime.open_console(ticket.app_id, ticket.deployment_id, ticket.component, ticket.instance)
