"""What a unit's containers are: their names on the engine, labels, command, port, limits (pure).

Names are unique on an engine shared by several shoal installations and apps of the same name:
they hold this installation's owner hash, the app id, the component, the deployment and the
instance. The instance name users see (``RunUnit.instance_names``) travels as the ``shoal.instance``
label, which adoption after a restart matches on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping

from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Kind, Probe, RunUnit
from shoal.domain.ports import LogSink
from shoal.runtime.container.builds import Image
from shoal.runtime.container.containers import RunSpec
from shoal.runtime.container.engine import Engine


def network_name(owner: str, app_id: str) -> str:
    return f"shoal-{owner[:8]}-{app_id}"


def container_name(owner: str, plan: AppPlan, unit: RunUnit, suffix: str) -> str:
    return f"shoal-{owner[:8]}-{plan.app_id[:8]}-{unit.name}-{plan.deployment_id[:8]}-{suffix}"


def own_port(unit: RunUnit) -> int | None:
    """The port a service listens on inside its container (``PORT``), published for the ingress."""
    return (unit.http_port or DEFAULT_HTTP_PORT) if unit.kind == Kind.SERVICE else None


def run_spec(unit: RunUnit, image: Image, *, name: str, network: str, labels: Mapping[str, str],
             env: Mapping[str, str]) -> RunSpec:
    """One container of ``unit``: its image's command unless a run command was found, its size's limits."""
    size = unit.size
    cpus = min(size.cpus, float(os.cpu_count() or 1)) if size else None  # an engine refuses more than it has
    return RunSpec(
        name=name, image=image.reference, network=network, aliases=(unit.name,), labels=dict(labels),
        env=dict(env), workdir=image.workdir,
        command=["/bin/sh", "-c", image.run_command] if image.run_command else None, port=own_port(unit),
        memory_bytes=size.memory_bytes if size else None, nano_cpus=int(cpus * 1e9) if cpus else None)


def exec_command(engine: Engine, container_id: str, workdir: str | None) -> list[str] | None:
    """The engine's own client running an interactive shell in the container (``exec -it``), through
    the same API shoal uses; ``None`` when that client is not installed."""
    client = "podman" if engine.is_podman else "docker"
    found = shutil.which(client)
    if found is None:
        return None
    where = ["--url", engine.info.url] if engine.is_podman else ["-H", engine.info.url]
    return [found, *where, "exec", "-it", *(["-w", workdir] if workdir else []), container_id, "/bin/sh"]


def own_probe(probe: Probe | None, unit: RunUnit) -> Probe | None:
    """A check on the component's own port (the published one); checks on other ports are not run."""
    if probe is None:
        return None
    return probe if probe.port == (unit.http_port or DEFAULT_HTTP_PORT) else None


def component_sink(log: LogSink, component: str) -> Callable[[str, str], None]:
    def sink(stage: str, line: str) -> None:
        log(stage, component, line)
    return sink
