"""Which image an ``image`` source names, and where shoal pulls it from.

Role: pure functions from a component's ``image`` block (reference §4.2: ``registry_type``,
``registry``, ``repository``, ``tag`` | ``digest``, ``registry_credentials``) and the operator's
``--registry-mirror FROM=TO`` map to a pullable reference; and the credential split. No I/O.

How DigitalOcean's registry types map to registries:

* ``DOCKER_HUB``: ``docker.io/<registry>/<repository>`` — ``registry`` is the Docker Hub namespace
  (``library`` for official images); a ``registry`` that is a host name (``registry.hub.docker.com``,
  the API document's example) means Docker Hub itself.
* ``GHCR``: ``ghcr.io/<registry>/<repository>`` (``registry`` is the owner).
* ``DOCR``: ``registry.digitalocean.com/<repository>`` (``registry`` is empty on DigitalOcean, where the
  account's registry is implied; shoal has no account registry, so a repository written
  ``registry-name/repo`` is used as is, and ``registry`` is prefixed when given).

A mirror replaces the registry host (``docker.io=127.0.0.1:5000``); the path stays the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REGISTRY_HOSTS = {"DOCKER_HUB": "docker.io", "GHCR": "ghcr.io", "DOCR": "registry.digitalocean.com"}
_HUB_ALIASES = ("registry.hub.docker.com", "index.docker.io", "docker.io", "registry-1.docker.io", "hub.docker.com")


@dataclass(frozen=True)
class ImageRef:
    """A pullable image: registry host, repository path, and a tag or a digest."""

    registry: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag or 'latest'}"


def parse_mirrors(values: Iterable[str]) -> dict[str, str]:
    """``FROM=TO`` strings (``--registry-mirror``) → {registry host: replacement}; ``ValueError`` names a bad one."""
    found: dict[str, str] = {}
    for value in values:
        source, sep, target = value.partition("=")
        source, target = source.strip().rstrip("/"), target.strip().rstrip("/")
        if not sep or not source or not target or "/" in source or "/" in target:
            raise ValueError(f"--registry-mirror {value!r} is not FROM=TO (two registry hosts, e.g. "
                             "docker.io=127.0.0.1:5000)")
        found[source] = target
    return found


def image_ref(image: Mapping[str, Any], mirrors: Mapping[str, str] | None = None) -> ImageRef:
    """The reference to pull for an ``image`` block, with the mirror applied."""
    kind = str(image.get("registry_type") or "DOCKER_HUB")
    registry = str(image.get("registry") or "").strip("/")
    repository = str(image.get("repository") or "").strip("/")
    host = REGISTRY_HOSTS.get(kind, REGISTRY_HOSTS["DOCKER_HUB"])
    if kind == "DOCKER_HUB":
        namespace = "" if registry in _HUB_ALIASES else registry
        path = f"{namespace}/{repository}" if namespace else repository
        if "/" not in path:
            path = f"library/{path}"
    else:
        path = f"{registry}/{repository}" if registry else repository
    digest = str(image.get("digest") or "") or None
    tag = None if digest else str(image.get("tag") or "latest")
    return ImageRef(registry=(mirrors or {}).get(host, host), path=path, tag=tag, digest=digest)


def credentials(value: str | None) -> tuple[str, str] | None:
    """``"user:token"`` (already unsealed) → (user, token); ``None`` when there are none."""
    if not value:
        return None
    user, sep, token = value.partition(":")
    return (user, token) if sep else (value, "")
