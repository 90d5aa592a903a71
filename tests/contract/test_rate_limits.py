"""Rate limits: DigitalOcean's headers on every response, 429 with retry-after when a window is full."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.live import new_token_value


def test_headers_count_down_and_429_carries_retry_after(fresh_server_factory: Any) -> None:
    server = fresh_server_factory("--rate-limit-per-minute", "4", "--rate-limit-per-hour", "100")
    with server.http() as http:
        # The readiness probe of the fixture already spent one request of this token.
        remaining = [int(http.get("/v2/apps/regions").headers["ratelimit-remaining"]) for _ in range(3)]
        assert remaining == [98, 97, 96]
        refused = http.get("/v2/apps/regions")
    assert refused.status_code == 429
    assert refused.json()["id"] == "too_many_requests" and refused.json()["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "100" and refused.headers["ratelimit-remaining"] == "96"
    assert int(refused.headers["ratelimit-reset"]) > 0

    # pydo surfaces the 429 (with retries off, as the reference advises for tests).
    with pytest.raises(HttpResponseError) as raised:
        server.client(retry_total=0).apps.list_regions()
    assert raised.value.status_code == 429

    # Limits are per token: another token of the same server is unaffected.
    other = server.create_token()
    assert server.client(other, retry_total=0).apps.list_regions()["regions"]


def test_hourly_window(fresh_server_factory: Any) -> None:
    server = fresh_server_factory("--rate-limit-per-minute", "50", "--rate-limit-per-hour", "3")
    with server.http() as http:
        assert http.get("/v2/account").headers["ratelimit-remaining"] == "1"
        assert http.get("/v2/account").status_code == 200
        refused = http.get("/v2/account")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60


def test_failed_authentication_is_rate_limited_by_address(fresh_server_factory: Any) -> None:
    server = fresh_server_factory("--rate-limit-per-minute", "3", "--rate-limit-per-hour", "100")
    with server.http(new_token_value()) as http:
        statuses = [http.get("/v2/apps").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
