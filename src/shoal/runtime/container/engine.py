"""Finding the container engine and connecting to it: podman's compatible API or Docker Engine.

Role: decide which URL to talk to (``--container-engine-url``; else shoal's own podman service when
podman is installed; else ``DOCKER_HOST``; else Docker's socket), connect with the ``docker`` SDK,
and describe what answered (``EngineInfo``: podman or Docker, its version, cgroups, OCI runtime) —
or say exactly why nothing did (``EngineUnavailable``), so ``shoal serve --runtime container``
fails at start with a reason instead of at the first deployment.

Everything the container runtime does goes through one ``Engine`` (``images``, ``containers``),
which carries the ``shoal.owner`` label value of this installation: listing, adoption, removal and
pruning only ever see objects with that label, so two shoal servers (or tests) sharing one engine
never touch each other's containers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests

DOCKER_SOCKET = "unix:///var/run/docker.sock"
API_TIMEOUT_SECONDS = 120


class EngineUnavailable(Exception):
    """No container engine answered at the chosen URL; the message says which URL and why."""


@dataclass(frozen=True)
class EngineInfo:
    url: str
    name: str  # "podman" or "docker"
    version: str
    api_version: str
    cgroups: str
    oci_runtime: str

    def describe(self) -> str:
        return (f"{self.name} {self.version} (API {self.api_version}, cgroups v{self.cgroups}, "
                f"{self.oci_runtime or 'default OCI runtime'}) at {self.url}")


def choose_url(explicit: str | None, podman_url: str | None, docker_host: str | None) -> tuple[str, str]:
    """(URL, why this one): the operator's URL, else shoal's podman service (when podman is
    installed, ``podman_url`` is its socket), else ``DOCKER_HOST``, else Docker's default socket."""
    if explicit:
        return explicit, "--container-engine-url"
    if podman_url:
        return podman_url, "shoal's podman service (podman is installed)"
    if docker_host:
        return docker_host, "DOCKER_HOST"
    return DOCKER_SOCKET, "Docker's default socket (podman is not installed and DOCKER_HOST is unset)"


def docker_host() -> str | None:
    return os.environ.get("DOCKER_HOST") or None


class Engine:
    """The ``docker`` SDK client for one engine, and the label that marks this installation's objects."""

    def __init__(self, client: docker.DockerClient, info: EngineInfo, owner: str) -> None:
        self.client = client
        self.api = client.api
        self.info = info
        self.owner = owner

    @property
    def is_podman(self) -> bool:
        return self.info.name == "podman"

    def labels(self, **values: str) -> dict[str, str]:
        """Labels for a new object: this installation's owner label plus ``shoal.<key>`` values."""
        return {"shoal.owner": self.owner, **{f"shoal.{key}": value for key, value in values.items()}}

    def filters(self, **values: str) -> list[str]:
        """Label filters matching this installation's objects (narrowed by ``shoal.<key>`` values)."""
        return [f"{key}={value}" for key, value in self.labels(**values).items()]

    def close(self) -> None:
        self.client.close()


def connect(url: str, owner: str, why: str = "") -> Engine:
    """Connect and identify the engine; ``EngineUnavailable`` names the URL and the failure."""
    where = f"{url} ({why})" if why else url
    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        raise EngineUnavailable(f"no container engine: nothing listens at {where}")
    try:
        client = docker.DockerClient(base_url=url, timeout=API_TIMEOUT_SECONDS)
        version = client.version()
        info = client.info()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise EngineUnavailable(f"no container engine at {where}: {exc}") from exc
    return Engine(client, _describe(url, version, info), owner)


def _describe(url: str, version: dict[str, object], info: dict[str, object]) -> EngineInfo:
    components = version.get("Components")
    names = [str(c.get("Name", "")) for c in components if isinstance(c, dict)] if isinstance(components, list) else []
    podman = any("podman" in name.lower() for name in names)
    runtime = info.get("DefaultRuntime") or ""
    if podman:
        runtime = next((n.removeprefix("OCI Runtime (").rstrip(")") for n in names if n.startswith("OCI Runtime")),
                       str(runtime))
    return EngineInfo(url=url, name="podman" if podman else "docker", version=str(version.get("Version", "?")),
                      api_version=str(version.get("ApiVersion", "?")), cgroups=str(info.get("CgroupVersion", "?")),
                      oci_runtime=str(runtime))
