"""Backends by name: ``shoal serve --runtime NAME``."""

from __future__ import annotations

from collections.abc import Callable

from shoal.core.errors import BadRequest
from shoal.core.secrets import SecretBox
from shoal.core.settings import Settings
from shoal.domain.ports import JobStore, RoutePublisher, Runtime


def _simulate(settings: Settings, job_store: JobStore) -> Runtime:
    from shoal.runtime.simulate import SimulateRuntime

    return SimulateRuntime(step_seconds=settings.runtime.simulate_step_seconds, job_store=job_store)


Clusters = Callable[[str], tuple[str, str] | None]


def _local(settings: Settings, routes: RoutePublisher, job_store: JobStore, box: SecretBox,
           clusters: Clusters) -> Runtime:
    from shoal.runtime.local.runtime import LocalRuntime

    return LocalRuntime(settings.data_dir, routes, job_store, dict(settings.host_env), box, clusters=clusters)


BACKENDS: dict[str, Callable[[Settings, RoutePublisher, JobStore, SecretBox, Clusters], Runtime]] = {
    "simulate": lambda settings, routes, job_store, box, clusters: _simulate(settings, job_store),
    "local": _local,
}


def create_runtime(settings: Settings, routes: RoutePublisher, job_store: JobStore, box: SecretBox,
                   clusters: Clusters) -> Runtime:
    factory = BACKENDS.get(settings.runtime.backend)
    if factory is None:
        raise BadRequest(f"unknown runtime {settings.runtime.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return factory(settings, routes, job_store, box, clusters)
