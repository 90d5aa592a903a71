"""The instances of the local runtime's running units: starting them, adding and removing them
(autoscaling), putting a service to sleep and waking it, and what each one uses.

Scaling and sleep are ``shoal.runtime.scaling``'s moves, shared with the container runtime; this
module says what one instance is here (a supervised process group on its own port).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Probe, RunUnit
from shoal.domain.ports import InstanceState, LogSink
from shoal.runtime.local.bindings import Bindings
from shoal.runtime.local.build import BuildResult
from shoal.runtime.local.environment import values
from shoal.runtime.local.functions import gateway_command, gateway_env, gateway_probe
from shoal.runtime.local.records import InstanceRecord, Output, UnitRecord
from shoal.runtime.local.supervisor import Instance, ProcessSpec, Supervisor
from shoal.runtime.local.usage import Limits, UsageMeter
from shoal.runtime.scaling import Scaler

logger = logging.getLogger("shoal.runtime")
LOCALHOST = "127.0.0.1"
CPU_WINDOW_SECONDS = 1.0  # CPU percentages are averaged over at least this long
Env = Callable[[AppPlan, RunUnit, BuildResult, "int | None"], dict[str, str]]
User = Callable[[AppPlan], "tuple[int, int] | None"]  # the app's own (uid, gid) when apps are isolated


class Instances(Scaler[UnitRecord, InstanceRecord]):
    def __init__(self, supervisor: Supervisor, bindings: Bindings, usage: UsageMeter,
                 by_instance: dict[str, Output], env: Env, user: User = lambda plan: None) -> None:
        self._user = user
        self._supervisor = supervisor
        self._bindings = bindings
        self._usage = usage
        self._by_instance = by_instance
        self._env = env
        # instance → (when, its CPU seconds then, the percentage over the window before)
        self._cpu_marks: dict[str, tuple[float, float, float | None]] = {}

    async def start(self, plan: AppPlan, record: UnitRecord, build: BuildResult, count: int, log: LogSink) -> None:
        for index in range(len(record.instances), count):
            await self._start_one(plan, record, build, index, log)

    async def _start_one(self, plan: AppPlan, record: UnitRecord, build: BuildResult, index: int,
                         log: LogSink) -> InstanceRecord:
        unit = record.unit
        assert build.run_command
        name = f"{plan.app_name}-{unit.name}-{plan.deployment_id[:8]}-{index}"
        port = self._bindings.instance_port(plan, unit, index, log)  # checked free right before the start
        instance = InstanceRecord(name, port)
        self._by_instance[name] = Output(log, unit.name, "RUN", instance)
        spec = ProcessSpec(
            name=name, command=self._usage.join_command(name, build.run_command, self._user(plan), limits_of(unit)),
            cwd=build.app_dir,
            env=self._env(plan, unit, build, port),
            readiness=local_probe(unit.readiness, unit, port) if port else None,
            liveness=local_probe(unit.liveness, unit, port) if port else None,
            grace_period_seconds=unit.termination.grace_period_seconds, app_id=plan.app_id, user=self._user(plan))
        record.instances.append(instance)
        log("DEPLOY", unit.name, f"starting instance {index} of {unit.name}: {build.run_command}"
                                 + (f" (PORT={port})" if port else ""))
        await self._supervisor.start(spec)
        return instance

    async def start_gateway(self, plan: AppPlan, record: UnitRecord, build: BuildResult, log: LogSink,
                            host_env: dict[str, str]) -> None:
        """A functions component: one gateway process on the component's port, ready before ``start``
        returns (functions have no separate wait step in DigitalOcean's progress tree)."""
        unit = record.unit
        port = self._bindings.instance_ports(plan)[unit.name][0]
        name = f"{plan.app_name}-{unit.name}-{plan.deployment_id[:8]}-functions"
        # project.yml's ${VAR}s are the deployer's to fill in, so build-time variables count too.
        env = {**values(unit.build_env, self._bindings.value_of(plan, unit.name, True)),
               **values(unit.run_env, self._bindings.value_of(plan, unit.name, False))}
        own_cors = any(r.cors for r in plan.routes if r.component == unit.name)
        token = secrets.token_hex(16)
        spec = ProcessSpec(name=name, command=gateway_command(), cwd=build.app_dir, readiness=gateway_probe(port),
                           env=gateway_env(build.app_dir, unit, env, port, default_cors=not own_cors,
                                           namespace=plan.app_id, api_host=plan.app_url, host_env=host_env,
                                           stats_token=token),
                           grace_period_seconds=10, app_id=plan.app_id, user=self._user(plan))
        instance = InstanceRecord(name, port, stats_token=token)
        self._by_instance[name] = Output(log, unit.name, "RUN", instance)
        record.instances.append(instance)
        log("DEPLOY", unit.name, f"starting the functions gateway of {unit.name} (port {port})")
        await self._supervisor.start(spec)
        if not await self._supervisor.wait_ready(name, gateway_probe(port).patience_seconds):
            raise StepFailed("ContainerHealthChecksFailed", f"the functions gateway of {unit.name} did not start "
                                                            "listening; see its RUN logs")
        log("DEPLOY", unit.name, f"functions gateway of {unit.name} is ready")

    async def stop(self, names: list[str]) -> None:
        await asyncio.gather(*(self._supervisor.stop(name) for name in names), return_exceptions=True)
        for name in names:
            self._by_instance.pop(name, None)
            self._cpu_marks.pop(name, None)
            self._usage.release(name)

    # -- scaling (the moves are shoal.runtime.scaling's) ---------------------------------------------

    async def _add(self, plan: AppPlan, record: UnitRecord, count: int, log: LogSink) -> list[InstanceRecord]:
        assert record.build is not None, "a unit is built before it runs"
        added = [await self._start_one(plan, record, record.build, index, log)
                 for index in range(len(record.instances), count)]
        for instance in added:
            self.serve(record, instance, ready=False)
        return added

    def serve(self, record: UnitRecord, instance: InstanceRecord, ready: bool) -> None:
        """Put the instance in its service's published upstream (marked as ``ready`` says)."""
        upstream = record.upstream
        if upstream is None or not instance.port:
            return
        instance.upstream = upstream
        address = (LOCALHOST, instance.port)
        if address not in upstream.addresses:
            upstream.addresses.append(address)
        upstream.mark(address, ready)

    def _withdraw(self, instance: InstanceRecord) -> None:
        upstream, instance.upstream = instance.upstream, None
        if upstream is not None and instance.port:
            address = (LOCALHOST, instance.port)
            if address in upstream.addresses:
                upstream.addresses.remove(address)
            upstream.down.discard(address)

    async def _wait_ready(self, name: str, patience: float) -> bool:
        return await self._supervisor.wait_ready(name, patience)

    # -- what they use -------------------------------------------------------------------------------

    def state(self, deployment_id: str, record: UnitRecord, instance: InstanceRecord,
              live: Instance) -> InstanceState:
        used = self._usage.usage(instance.name, live.pid)
        percent = None
        if used is not None:
            now = time.monotonic()
            mark = self._cpu_marks.get(instance.name)
            if mark is None:
                self._cpu_marks[instance.name] = (now, used.cpu_seconds, None)
            elif now - mark[0] >= CPU_WINDOW_SECONDS:
                cpus = record.unit.size.cpus if record.unit.size else 1.0
                percent = round(100 * max(0.0, used.cpu_seconds - mark[1]) / (now - mark[0]) / max(cpus, 0.01), 2)
                self._cpu_marks[instance.name] = (now, used.cpu_seconds, percent)
            else:
                percent = mark[2]
        return InstanceState(deployment_id, record.unit.name, instance.name, live.ready, live.restart_count,
                             cpu_percent=percent, memory_bytes=used.memory_bytes if used else None)


def limits_of(unit: RunUnit) -> Limits | None:
    """What an instance of ``unit``'s size may use: its memory and its CPUs."""
    return Limits(unit.size.memory_bytes, unit.size.cpus) if unit.size else None


def local_probe(probe: Probe | None, unit: RunUnit, port: int) -> Probe | None:
    """The unit's probe aimed at this instance: a check on the component's own port goes to the
    port the instance really listens on here (``PORT``); a check on another port stays as written."""
    if probe is None:
        return None
    own = unit.http_port or DEFAULT_HTTP_PORT
    return replace(probe, port=port) if probe.port == own else probe
