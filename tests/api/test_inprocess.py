"""The API in-process (Starlette's test client): fast checks of the guard, envelopes and routing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shoal.bootstrap import build_platform
from shoal.core.clock import FakeClock
from shoal.core.settings import ApiSettings, RateLimits, Settings


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(data_dir=tmp_path, api=ApiSettings(rate_limits=RateLimits(per_hour=50, per_minute=20)))
    platform = build_platform(settings, clock=FakeClock())
    issued = platform.accounts.bootstrap_admin(None)
    assert issued is not None
    with TestClient(platform.api(FakeClock()), base_url="https://testserver") as client:
        client.headers["Authorization"] = f"Bearer {issued.value}"
        yield client, issued.value
    platform.close()


def test_every_response_has_request_id_and_rate_limit_headers(api: tuple[TestClient, str]) -> None:
    client, _ = api
    for response in (client.get("/v2/apps"), client.get("/v2/apps/nope"), client.get("/v2/unknown"),
                     client.get("/v2/apps", headers={"Authorization": "Bearer nope"})):
        assert response.headers["x-request-id"]
        assert response.headers["ratelimit-limit"] == "50"
        if response.status_code >= 400:
            assert response.json()["request_id"] == response.headers["x-request-id"]


def test_bootstrap_happens_once(tmp_path: Path) -> None:
    platform = build_platform(Settings(data_dir=tmp_path))
    assert platform.accounts.bootstrap_admin(None) is not None
    assert platform.accounts.bootstrap_admin(None) is None
    platform.close()


def test_routes_for_fixed_paths_win_over_ids(api: tuple[TestClient, str]) -> None:
    client, _ = api
    assert client.get("/v2/apps/regions").json()["regions"]
    assert client.get("/v2/apps/tiers/instance_sizes").json()["instance_sizes"]
    assert client.post("/v2/apps/propose", json={"spec": {"name": "ok-app"}}).status_code in (200, 400)
    assert client.get("/v2/apps/propose").status_code == 404


def test_the_route_table_names_the_operations() -> None:
    from shoal.api.routing import route_table

    table = set(route_table())
    assert ("GET", "/v2/apps/{id}") in table and ("POST", "/v2/apps/propose") in table
    assert not any(path.endswith("/") for _, path in table)
