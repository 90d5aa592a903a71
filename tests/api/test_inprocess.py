"""The API in-process (Starlette's test client): fast checks of the guard, envelopes and routing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shoal.bootstrap import Platform, build_platform
from shoal.core.clock import FakeClock
from shoal.core.settings import ApiSettings, RateLimits, Settings
from tests.conftest import service_spec


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path, api=ApiSettings(rate_limits=RateLimits(per_hour=50, per_minute=20)))
    platform = build_platform(settings, clock=FakeClock())
    yield platform
    platform.close()


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, str]]:
    issued = platform.accounts.bootstrap_admin(None)
    assert issued is not None
    with TestClient(platform.api(FakeClock()), base_url="https://testserver") as client:
        client.headers["Authorization"] = f"Bearer {issued.value}"
        yield client, issued.value


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
    from shoal.api.route_table import route_table

    table = set(route_table())
    assert ("GET", "/v2/apps/{id}") in table and ("POST", "/v2/apps/propose") in table
    assert not any(path.endswith("/") for _, path in table)


def test_bandwidth_is_what_was_flushed_plus_what_the_meter_still_holds(platform: Platform,
                                                                       api: tuple[TestClient, str]) -> None:
    client, _ = api
    app_id = client.post("/v2/apps", json={"spec": service_spec("counted")}).json()["app"]["id"]
    day = date(2026, 11, 1)
    platform.traffic.record(app_id, "web", day, 200, 1000, 0.1)
    platform.database.traffic.add_traffic(platform.traffic.take())
    platform.traffic.record(app_id, "web", day, 200, 234, 0.1)
    platform.traffic.record(app_id, "web", date(2026, 11, 2), 200, 99, 0.1)
    usage = client.get(f"/v2/apps/{app_id}/metrics/bandwidth_daily", params={"date": "2026-11-01T00:00:00Z"}).json()
    assert usage == {"app_bandwidth_usage": [{"app_id": app_id, "bandwidth_bytes": "1234"}],
                     "date": "2026-11-01T00:00:00Z"}
    many = client.post("/v2/apps/metrics/bandwidth_daily", json={"app_ids": [app_id], "date": "2026-11-02T12:00:00Z"})
    assert many.json()["app_bandwidth_usage"] == [{"app_id": app_id, "bandwidth_bytes": "99"}]
