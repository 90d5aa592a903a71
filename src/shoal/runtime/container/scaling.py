"""The instance containers of the container runtime's running units: starting (or adopting) them,
adding and removing them (autoscaling), putting a service to sleep and waking it — with the moves
of ``shoal.runtime.scaling``, which the process runtime shares; this module says what one instance
is here (a supervised container, published on a host port, its readiness marked by ``on_ready``).

Names: the ``index``-th instance is ``RunUnit.instance_name(..., index)`` (the ``shoal.instance``
label) in the container ``container_name(..., str(index))``, so an instance added by scaling is
named like the ones a deployment starts. After shoal restarted, ``start`` adopts the containers of
the deployment's own instance count and removes the ones scaling had added (the autoscaler adds
them again if the load still asks for them), as the local runtime starts only the deployment's count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shoal.domain.plan import AppPlan, RunUnit
from shoal.domain.ports import LogSink
from shoal.domain.routing import Upstream
from shoal.runtime.container import containers
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.builds import Image
from shoal.runtime.container.containers import Found, RunSpec
from shoal.runtime.container.instances import Instance, Supervisor
from shoal.runtime.container.records import UnitRecord
from shoal.runtime.container.specs import component_sink, own_probe
from shoal.runtime.scaling import Scaler

logger = logging.getLogger("shoal.runtime.container")
LOCALHOST = "127.0.0.1"
# (plan, unit, image, network, index, instance name) → the container of that instance
SpecOf = Callable[[AppPlan, RunUnit, Image, str, int, str], RunSpec]


class Replicas(Scaler[UnitRecord, Instance]):
    def __init__(self, access: EngineAccess, supervisor: Supervisor, spec_of: SpecOf) -> None:
        self._access = access
        self._supervisor = supervisor
        self._spec_of = spec_of
        self._served: dict[str, tuple[Upstream, tuple[str, int]]] = {}  # instance → where the ingress sends

    async def start(self, plan: AppPlan, record: UnitRecord, image: Image, network: str, log: LogSink) -> None:
        """The deployment's instances, adopting the containers of theirs that still run."""
        unit = record.unit
        record.image, record.network = image, network
        running = {f.labels.get("shoal.instance"): f for f in await self._access.call(
            containers.listed, app=plan.app_id, deployment=plan.deployment_id, component=unit.name)}
        names = unit.instance_names(plan.app_name, plan.deployment_id)
        for extra in [f for name, f in running.items() if name not in names]:
            await self._access.call(containers.stop, extra.id, 1)  # added by scaling before shoal restarted
            await self._access.call(containers.remove, extra.id)
        for index, name in enumerate(names):
            await self._start_one(plan, record, index, log, running.get(name), add_first=True)

    async def _start_one(self, plan: AppPlan, record: UnitRecord, index: int, log: LogSink,
                         adopt: Found | None = None, add_first: bool = False) -> Instance:
        """One instance's container running (or adopted) under supervision. ``add_first``: recorded
        even if it cannot start (a deployment's wait step then reports it), else only once it runs."""
        unit, image = record.unit, record.image
        assert image is not None and record.network is not None, "a unit's image and network come first"
        name = unit.instance_name(plan.app_name, plan.deployment_id, index)
        spec = self._spec_of(plan, unit, image, record.network, index, name)
        inst = Instance(name, spec, sink=component_sink(log, unit.name), readiness=own_probe(unit.readiness, unit),
                        liveness=own_probe(unit.liveness, unit), grace_seconds=unit.termination.grace_period_seconds,
                        on_ready=self.readiness)
        if add_first:
            record.instances.append(inst)
        await self._supervisor.start(inst, adopt)
        if not add_first:
            record.instances.append(inst)
        how = "adopted the running container" if adopt and adopt.running else f"started {image.reference}"
        log("DEPLOY", unit.name, f"instance {index} of {unit.name}: {how}"
                                 + (f" (PORT={spec.port}, published on {LOCALHOST}:{inst.host_port})"
                                    if spec.port else ""))
        return inst

    def serve(self, record: UnitRecord, inst: Instance) -> None:
        """Put the instance in its service's published upstream (down until it is ready)."""
        upstream = record.upstream
        if upstream is None or inst.host_port is None:
            return
        address = (LOCALHOST, inst.host_port)
        self._served[inst.name] = (upstream, address)
        if address not in upstream.addresses:
            upstream.addresses.append(address)
        upstream.mark(address, inst.ready)

    def readiness(self, inst: Instance, ready: bool) -> None:
        """The supervisor's word on an instance: mark it up or down where the ingress sends it."""
        served = self._served.get(inst.name)
        if served is None or inst.host_port is None:
            return
        upstream, address = served
        now = (LOCALHOST, inst.host_port)
        if address != now and address in upstream.addresses:  # restarted on another port
            upstream.addresses[upstream.addresses.index(address)] = now
            upstream.down.discard(address)
            self._served[inst.name] = (upstream, now)
        upstream.mark(now, ready)

    def _withdraw(self, inst: Instance) -> None:
        served = self._served.pop(inst.name, None)
        if served is not None:
            upstream, address = served
            if address in upstream.addresses:
                upstream.addresses.remove(address)
            upstream.down.discard(address)

    async def stop(self, names: list[str], grace: float | None = None) -> None:
        await asyncio.gather(*(self._supervisor.stop(name, grace) for name in names), return_exceptions=True)
        for name in names:
            self._served.pop(name, None)

    # -- scaling (the moves are shoal.runtime.scaling's) ---------------------------------------------

    async def _add(self, plan: AppPlan, record: UnitRecord, count: int, log: LogSink) -> list[Instance]:
        added = []
        for _ in range(len(record.instances), count):
            inst = await self._start_one(plan, record, _next_index(record), log)
            self.serve(record, inst)
            added.append(inst)
        return added

    async def _wait_ready(self, name: str, patience: float) -> bool:
        return await self._supervisor.wait_ready(name, patience)


def _next_index(record: UnitRecord) -> int:
    """The lowest index no instance of the unit has (instance names end in their index)."""
    taken = {int(i.name.rsplit("-", 1)[1]) for i in record.instances if i.name.rsplit("-", 1)[1].isdigit()}
    return next(i for i in range(len(taken) + 1) if i not in taken)
