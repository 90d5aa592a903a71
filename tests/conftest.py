"""Fixtures: live shoal servers (SQLite and embedded PostgreSQL) and pydo clients for them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubecluster import kube_cluster, pytest_collection_modifyitems  # noqa: F401  (one cluster per session, used last)
from tests.live import UNLIMITED, LiveServer

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded PostgreSQL server (pgserver) for the session; each user gets its own database."""
    from pgserver.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


def postgres_database(server: Any) -> str:
    name = "shoal_" + uuid.uuid4().hex[:12]
    server.psql(f"CREATE DATABASE {name};")
    return str(server.get_uri(name))


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running ``shoal serve``, once on SQLite and once on PostgreSQL."""
    url = postgres_database(request.getfixturevalue("postgres")) if request.param == "postgres" else None
    # Many tests share this server and poll it every 50 ms: DigitalOcean's 250 requests a minute per
    # token would turn raw (non-retrying) requests into 429s. Rate limits are tested on servers of
    # their own (test_rate_limits.py).
    live = LiveServer(data_dir=tmp_path_factory.mktemp(f"shoal-{request.param}") / "data", database_url=url,
                      extra_args=UNLIMITED)
    live.start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Any:
    return server.client()


@pytest.fixture
def fresh_server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start extra servers with their own data dirs and flags; all are stopped at the end."""
    started: list[LiveServer] = []

    def make(*extra_args: str, database_url: str | None = None, data_dir: Path | None = None,
             runtime: str = "simulate") -> LiveServer:
        live = LiveServer(data_dir=data_dir or tmp_path / f"data{len(started)}", database_url=database_url,
                          extra_args=list(extra_args), runtime=runtime)
        started.append(live)
        return live.start()

    yield make
    for live in started:
        live.stop()


def unique_name(prefix: str = "app") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def service_spec(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name,
            "services": [{"name": "web", "git": {"repo_clone_url": "https://example.com/repo.git", "branch": "main"},
                          **extra}]}


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` returns something truthy, and return it."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


TERMINAL = {"ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"}


def wait_deployment(client: Any, app_id: str, deployment_id: str, phases: set[str] | None = None,
                    timeout: float = 60) -> dict[str, Any]:
    wanted = phases or TERMINAL

    def phase() -> dict[str, Any] | None:
        dep = client.apps.get_deployment(app_id, deployment_id)["deployment"]
        return dep if dep["phase"] in wanted else None

    return wait_for(phase, timeout)  # type: ignore[no-any-return,unused-ignore]


def error_body(error: Exception) -> dict[str, Any]:
    """The DigitalOcean error object of a pydo ``HttpResponseError``."""
    import json

    response = getattr(error, "response", None)
    assert response is not None, f"{error!r} carries no response"
    body = json.loads(response.text())
    assert isinstance(body, dict)
    return body


def leaves(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leaf steps of a progress tree as the API returned it."""
    found: list[dict[str, Any]] = []
    for step in steps:
        found.extend(leaves(step["steps"]) if step.get("steps") else [step])
    return found
