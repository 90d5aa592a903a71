"""What the container runtime keeps about what it runs: one record per app, deployment and component.

What really runs is the engine's to say (``instances``); these records say what shoal started for
which deployment, the image it runs, and — for a published service — the upstream the ingress
sends its requests to, which scaling and inactivity sleep change.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shoal.domain.plan import AppPlan, RunUnit
from shoal.domain.routing import Upstream
from shoal.runtime.container.builds import Image
from shoal.runtime.container.instances import Instance


@dataclass
class UnitRecord:
    """One component of one deployment, as this runtime runs it."""

    unit: RunUnit
    image: Image | None = None
    started: bool = False
    network: str | None = None  # the app's network its instances joined
    instances: list[Instance] = field(default_factory=list)
    upstream: Upstream | None = None  # a service's, once published
    published_at: float = 0.0  # time.monotonic() when it was: idleness counts from then at the latest
    changing: asyncio.Lock = field(default_factory=asyncio.Lock)  # one scale (or wake) at a time
    waking: asyncio.Future[None] | None = None


@dataclass
class DeploymentRecord:
    plan: AppPlan
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
