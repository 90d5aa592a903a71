"""Backends by name: ``shoal serve --runtime NAME``."""

from __future__ import annotations

from collections.abc import Callable

from shoal.core.errors import BadRequest
from shoal.core.secrets import SecretBox
from shoal.core.settings import Settings
from shoal.domain.ports import JobStore, RoutePublisher, Runtime, SourcePolicy


def _simulate(settings: Settings, *_: object) -> Runtime:
    from shoal.runtime.simulate import SimulateRuntime

    return SimulateRuntime(step_seconds=settings.runtime.simulate_step_seconds)


Clusters = Callable[[str], tuple[str, str] | None]


def _local(settings: Settings, routes: RoutePublisher, job_store: JobStore, box: SecretBox,
           clusters: Clusters, sources: SourcePolicy | None) -> Runtime:
    from shoal.runtime.local.runtime import LocalRuntime

    return LocalRuntime(settings.data_dir, routes, job_store, dict(settings.host_env), box, clusters=clusters,
                        sources=sources)


BACKENDS: dict[str, Callable[[Settings, RoutePublisher, JobStore, SecretBox, Clusters, SourcePolicy | None],
                             Runtime]] = {
    "simulate": _simulate,
    "local": _local,
}


def create_runtime(settings: Settings, routes: RoutePublisher, job_store: JobStore, box: SecretBox,
                   clusters: Clusters, sources: SourcePolicy | None = None) -> Runtime:
    """The backend ``settings`` name; ``sources`` says which local sources each account may build from."""
    factory = BACKENDS.get(settings.runtime.backend)
    if factory is None:
        raise BadRequest(f"unknown runtime {settings.runtime.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return factory(settings, routes, job_store, box, clusters, sources)
