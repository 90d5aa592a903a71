"""Fixtures for the engine seam's tests: one private podman service (with a loopback registry
mirrored in) per session, the stack image, and cleanup of all they labelled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shoal.runtime.container.engine import Engine
from tests.containers import clean, engine_session, image_ids, podman_missing, stack
from tests.registry import LoopbackRegistry, registry_available


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackRegistry]:
    reason = podman_missing() or registry_available()
    if reason:
        pytest.skip(reason)
    live = LoopbackRegistry(tmp_path_factory.mktemp("registry")).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, registry: LoopbackRegistry) -> Iterator[Engine]:
    """An engine whose registries.conf mirrors ``mirror.test`` (an unreachable name) to the loopback registry."""
    session = engine_session(tmp_path_factory.mktemp("engine"), mirrors={"mirror.test": registry.host})
    before = image_ids(session.engine)
    try:
        yield session.engine
    finally:
        clean(session, before)


@pytest.fixture(scope="session")
def stack_image(engine: Engine) -> str:
    return stack(engine)
