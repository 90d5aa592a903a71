"""What the local runtime keeps about what it runs: one record per app, deployment and component.

``_by_instance`` in the runtime only indexes these by process name, for the supervisor's callbacks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shoal.domain.plan import AppPlan, RunUnit
from shoal.domain.ports import LogSink
from shoal.domain.routing import Upstream
from shoal.runtime.local.build import BuildResult


@dataclass
class InstanceRecord:
    name: str
    port: int | None
    upstream: Upstream | None = None  # the published upstream it serves in, once traffic is switched
    stats_token: str = ""  # a functions gateway's: what reads its activation totals


@dataclass
class UnitRecord:
    """One component of one deployment, as this runtime runs it."""

    unit: RunUnit
    build: BuildResult | None = None
    started: bool = False
    instances: list[InstanceRecord] = field(default_factory=list)
    upstream: Upstream | None = None  # a service's, once published
    published_at: float = 0.0  # time.monotonic() when it was: idleness counts from then at the latest
    changing: asyncio.Lock = field(default_factory=asyncio.Lock)  # one scale (or wake) at a time
    waking: asyncio.Future[None] | None = None


@dataclass
class DeploymentRecord:
    plan: AppPlan
    log: LogSink
    units: dict[str, UnitRecord] = field(default_factory=dict)

    def record(self, unit: RunUnit) -> UnitRecord:
        found = self.units.get(unit.name)
        if found is None:
            found = self.units[unit.name] = UnitRecord(unit)
        return found


@dataclass
class AppRecord:
    live: str | None = None  # deployment whose backends the ingress serves
    switched_at: float = 0.0  # loop time of the last switch: drains count from it
    deployments: dict[str, DeploymentRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """Where a process's lines go."""

    sink: LogSink
    component: str
    stage: str
    upstream_of: InstanceRecord | None = None
