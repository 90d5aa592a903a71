"""Open the container engine for one shoal process: choose the URL, start shoal's podman service if
that is the choice, connect, and undo it all on close.

Role: the one place that turns ``--container-engine-url`` / ``--registry-mirror`` and the data dir
into a connected ``Engine`` (``shoal serve --runtime container``, ``shoal stack build`` and the
tests all use it). The podman service's socket and configuration live in ``DATA_DIR/podman``; the
engine's storage is the machine's (so images, the stack image among them, are shared by every shoal
on the machine and separated by the ``shoal.owner`` label).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shoal.runtime.container.conf import PodmanConf, write_podman_conf
from shoal.runtime.container.engine import Engine, EngineUnavailable, choose_url, connect, docker_host
from shoal.runtime.container.service import PodmanService, ServiceFailed, podman_installed


def owner_of(data_dir: Path) -> str:
    """This installation's ``shoal.owner`` label: stable for a data dir across restarts."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


@dataclass
class EngineSession:
    """A connected engine and, when shoal started it, its podman service (stopped by ``close``)."""

    engine: Engine
    service: PodmanService | None = None
    conf: PodmanConf | None = None
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.engine.close()
        if self.service is not None:
            self.service.stop()


def open_engine(data_dir: Path, url: str | None = None, mirrors: Mapping[str, str] | None = None,
                registries: Iterable[str] = ()) -> EngineSession:
    """Connect (see ``engine.choose_url`` for the order); ``EngineUnavailable`` says why none answered.
    ``registries``: more registries shoal's podman speaks to (plain HTTP on loopback), beside the mirrors."""
    directory = data_dir / "podman"
    service: PodmanService | None = None
    conf: PodmanConf | None = None
    podman_url: str | None = None
    if not url and podman_installed():
        conf = write_podman_conf(directory, mirrors, registries)
        service = PodmanService(directory, conf)
        podman_url = service.url
    chosen, why = choose_url(url, podman_url, docker_host())
    if service is not None and chosen == service.url:
        try:
            service.start()
        except ServiceFailed as exc:
            raise EngineUnavailable(f"no container engine: {exc}") from exc
    else:
        service = None
    try:
        engine = connect(chosen, owner_of(data_dir), why)
    except EngineUnavailable:
        if service is not None:
            service.stop()
        raise
    return EngineSession(engine=engine, service=service, conf=conf)
