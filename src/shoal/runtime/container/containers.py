"""Containers and networks: run, inspect, follow, stop, list by label, remove.

Role: blocking calls on one ``Engine`` for what the container runtime runs. Every container is
unprivileged (``cap-drop ALL``, ``no-new-privileges``, no privileged mode), limited to its instance
size (memory bytes, CPU quota, a pids limit), labelled with app / deployment / component, joined to
its app's network under its component's name, and publishes at most one port, on 127.0.0.1 only,
at a port the engine picks (read back from the container). Each app gets one network, so
components reach each other by name and apps cannot reach each other's containers (podman's
networks are created isolated from one another).

Stopping is SIGTERM, then SIGKILL after the grace period (the engine's stop timeout). An exit is
described with its code and whether the kernel's OOM killer ended it (``Exit.oom_killed``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import requests

from shoal.runtime.container.engine import Engine

Log = Callable[[str], None]
PIDS_LIMIT = 4096


@dataclass(frozen=True)
class RunSpec:
    """One container to run. ``command`` ``None`` keeps the image's own CMD/ENTRYPOINT."""

    name: str
    image: str
    labels: Mapping[str, str]
    env: Mapping[str, str] = field(default_factory=dict)
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    workdir: str | None = None
    network: str | None = None
    aliases: tuple[str, ...] = ()
    port: int | None = None  # container port to publish on 127.0.0.1
    memory_bytes: int | None = None
    nano_cpus: int | None = None  # 1e9 = one CPU
    user: str | None = None


@dataclass(frozen=True)
class Running:
    id: str
    name: str
    host_port: int | None  # where 127.0.0.1 reaches ``RunSpec.port``


@dataclass(frozen=True)
class Exit:
    """How a container ended. ``oom_killed``: the engine said so, or — podman on cgroups v1 never
    says so — it was SIGKILLed (status 137) while under a memory limit. Only meaningful for an exit
    shoal did not cause: its own stop ends in 137 too once the grace period runs out."""

    code: int
    oom_killed: bool

    def describe(self) -> str:
        if self.oom_killed:
            return f"was killed for using more memory than its instance size allows (exit status {self.code})"
        return f"exited with status {self.code}"


@dataclass(frozen=True)
class Found:
    """A container this installation labelled, as listed (for adoption after a restart)."""

    id: str
    name: str
    labels: Mapping[str, str]
    running: bool
    host_port: int | None


def ensure_network(engine: Engine, name: str, labels: Mapping[str, str]) -> str:
    """The app's network, created once. On podman it is created through the libpod API with
    ``isolate``: the compatible API drops that option, and without it podman's bridge networks
    route to one another (app B could reach app A's containers by address)."""
    if any(n.name == name for n in engine.client.networks.list(names=[name])):
        return name
    try:
        if engine.is_podman:
            url = f"{engine.api.base_url}/v4.0.0/libpod/networks/create"
            answer = engine.api.post(url, json={"name": name, "driver": "bridge", "labels": dict(labels),
                                                "options": {"isolate": "true"}, "dns_enabled": True})
            if answer.status_code >= 400 and answer.status_code != 409:
                raise docker.errors.APIError(answer.text)
        else:
            engine.client.networks.create(name, driver="bridge", labels=dict(labels), check_duplicate=True)
    except docker.errors.APIError:
        if not any(n.name == name for n in engine.client.networks.list(names=[name])):
            raise  # not a racing creation of the same network
    return name


def run(engine: Engine, spec: RunSpec) -> Running:
    """Create and start a container (a leftover with the same name, from a crash, is replaced)."""
    remove_named(engine, spec.name)
    api = engine.api
    host_config = api.create_host_config(
        port_bindings={f"{spec.port}/tcp": ("127.0.0.1", None)} if spec.port else None,
        mem_limit=spec.memory_bytes, memswap_limit=spec.memory_bytes, nano_cpus=spec.nano_cpus,
        pids_limit=PIDS_LIMIT, cap_drop=["ALL"], security_opt=["no-new-privileges"], privileged=False,
        network_mode=spec.network, init=True)
    endpoints: Any = {spec.network: api.create_endpoint_config(aliases=list(spec.aliases))}
    networking = api.create_networking_config(endpoints) if spec.network else None  # the stubs say one config
    created = api.create_container(
        spec.image, command=spec.command, entrypoint=spec.entrypoint, environment=dict(spec.env),
        labels=dict(spec.labels), name=spec.name, working_dir=spec.workdir, user=spec.user or None,
        ports=[spec.port] if spec.port else None, host_config=host_config, networking_config=networking,
        detach=True)
    container_id = str(created["Id"])
    api.start(container_id)
    return Running(id=container_id, name=spec.name, host_port=_host_port(engine, container_id, spec.port))


def _host_port(engine: Engine, container_id: str, port: int | None) -> int | None:
    if not port:
        return None
    attrs = _inspect(engine, container_id)
    return _published(attrs, port)


def _published(attrs: Mapping[str, Any], port: int | None) -> int | None:
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def exit_of(engine: Engine, container_id: str) -> Exit | None:
    """How it ended, or ``None`` while it runs. podman answers an inspect of a container that is just
    exiting with a 500 ("read /proc/<pid>/cgroup: no such process"); it is asked again."""
    attrs = _inspect(engine, container_id)
    state = attrs.get("State") or {}
    if state.get("Running"):
        return None
    code = int(state.get("ExitCode") or 0)
    limited = int((attrs.get("HostConfig") or {}).get("Memory") or 0) > 0
    return Exit(code=code, oom_killed=bool(state.get("OOMKilled")) or (code == 137 and limited))


def main_pid(engine: Engine, container_id: str) -> int | None:
    """The host pid of the container's first process while it runs (its namespaces are that pid's)."""
    state = _inspect(engine, container_id).get("State") or {}
    pid = int(state.get("Pid") or 0)
    return pid if state.get("Running") and pid > 0 else None


def _inspect(engine: Engine, container_id: str, attempts: int = 5) -> dict[str, Any]:
    for attempt in range(attempts):
        try:
            return dict(engine.api.inspect_container(container_id))
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def wait(engine: Engine, container_id: str, timeout: float | None = None) -> Exit:
    """Block until it exits (a run-to-completion job); ``TimeoutError`` after ``timeout``."""
    try:
        engine.client.containers.get(container_id).wait(timeout=timeout)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise TimeoutError(f"container {container_id[:12]} still runs after {timeout} s") from exc
    found = exit_of(engine, container_id)
    return found or Exit(code=-1, oom_killed=False)


def follow(engine: Engine, container_id: str, log: Log, since: int | None = None) -> None:
    """Send its output to ``log`` line by line until it exits (stdout and stderr together)."""
    stream = engine.api.logs(container_id, stream=True, follow=True, stdout=True, stderr=True,
                             since=since)
    pending = b""
    for chunk in stream:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            log(line.decode(errors="replace").rstrip("\r"))
    if pending:
        log(pending.decode(errors="replace").rstrip("\r"))


def stop(engine: Engine, container_id: str, grace_seconds: float) -> None:
    """SIGTERM, then SIGKILL once ``grace_seconds`` pass (a gone container is not an error)."""
    with contextlib.suppress(docker.errors.NotFound):
        engine.api.stop(container_id, timeout=max(1, int(round(grace_seconds))))


def remove(engine: Engine, container_id: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        engine.api.remove_container(container_id, force=True, v=True)


def remove_named(engine: Engine, name: str) -> None:
    for item in engine.api.containers(all=True, filters={"name": f"^{name}$"}):
        if name in [str(n).lstrip("/") for n in item.get("Names") or []]:
            remove(engine, str(item["Id"]))


def listed(engine: Engine, **values: str) -> list[Found]:
    """This installation's containers with the given ``shoal.<key>`` labels, running or not.

    From the engine's summary list, without inspecting each one: a container removed between the
    list and an inspect (another task stopping it) must not make listing fail."""
    result: list[Found] = []
    for item in engine.api.containers(all=True, filters={"label": engine.filters(**values)}):
        names = [str(n).lstrip("/") for n in item.get("Names") or []]
        ports = [p for p in item.get("Ports") or [] if p.get("PublicPort")]
        result.append(Found(id=str(item["Id"]), name=names[0] if names else str(item["Id"])[:12],
                            labels=dict(item.get("Labels") or {}), running=str(item.get("State")) == "running",
                            host_port=int(ports[0]["PublicPort"]) if ports else None))
    return result


def remove_labelled(engine: Engine, grace_seconds: float = 10, **values: str) -> int:
    """Stop and remove this installation's containers and networks with these labels."""
    found = listed(engine, **values)
    for container in found:
        if container.running:
            stop(engine, container.id, grace_seconds)
        remove(engine, container.id)
    remove_networks(engine, **values)
    return len(found)


def remove_networks(engine: Engine, **values: str) -> None:
    for network in engine.client.networks.list(filters={"label": engine.filters(**values)}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()


def names(found: Iterable[Found]) -> list[str]:
    return sorted(f.name for f in found)


def network_address(engine: Engine, name: str) -> tuple[str, str]:
    """(gateway, subnet) of a network: the host's address on its bridge, and the containers' range."""
    attrs = engine.client.networks.get(name).attrs
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway") and config.get("Subnet") and ":" not in str(config["Gateway"]):
            return str(config["Gateway"]), str(config["Subnet"])
    raise docker.errors.APIError(f"network {name} has no IPv4 gateway")


def bridge_of(engine: Engine, name: str) -> str | None:
    """The host interface of a podman network (``podman3``); ``None`` on Docker or when not told."""
    if not engine.is_podman:
        return None
    answer = engine.api.get(f"{engine.api.base_url}/v4.0.0/libpod/networks/{name}/json")
    if answer.status_code >= 400:
        return None
    found = answer.json().get("network_interface")
    return str(found) if found else None
