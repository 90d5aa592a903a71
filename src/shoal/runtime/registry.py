"""Backends by name: ``shoal serve --runtime NAME``."""

from __future__ import annotations

from collections.abc import Callable

from shoal.core.errors import BadRequest
from shoal.core.settings import Settings
from shoal.domain.ports import Runtime


def _simulate(settings: Settings) -> Runtime:
    from shoal.runtime.simulate import SimulateRuntime

    return SimulateRuntime(step_seconds=settings.runtime.simulate_step_seconds)


BACKENDS: dict[str, Callable[[Settings], Runtime]] = {"simulate": _simulate}


def create_runtime(settings: Settings) -> Runtime:
    factory = BACKENDS.get(settings.runtime.backend)
    if factory is None:
        raise BadRequest(f"unknown runtime {settings.runtime.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return factory(settings)
