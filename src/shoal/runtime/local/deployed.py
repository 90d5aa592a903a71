"""What the local runtime runs, in memory: per app, its deployments; per deployment, its units
(each with its build and its instances); and where each process's output goes. Rebuilt from the
plan after shoal restarts (what ran before is ended by ``instances``, then started again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.domain.plan import AppPlan, RunUnit
from shoal.domain.ports import LogSink
from shoal.domain.routing import Upstream
from shoal.runtime.local.build import BuildResult


@dataclass
class Instance:
    name: str
    port: int | None
    upstream: Upstream | None = None  # the published upstream it serves in, once traffic is switched


@dataclass
class Unit:
    """One component of one deployment, as this runtime runs it."""

    unit: RunUnit
    build: BuildResult | None = None
    started: bool = False
    instances: list[Instance] = field(default_factory=list)


@dataclass
class Deployment:
    plan: AppPlan
    log: LogSink
    units: dict[str, Unit] = field(default_factory=dict)

    def record(self, unit: RunUnit) -> Unit:
        found = self.units.get(unit.name)
        if found is None:
            found = self.units[unit.name] = Unit(unit)
        return found


@dataclass
class App:
    live: str | None = None  # deployment whose backends the ingress serves
    switched_at: float = 0.0  # loop time of the last switch: drains count from it
    deployments: dict[str, Deployment] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """Where a process's lines go."""

    sink: LogSink
    component: str
    stage: str
    upstream_of: Instance | None = None
