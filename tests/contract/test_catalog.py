"""Regions, instance sizes, tiers and the account, through pydo (and raw HTTP where pydo has no method)."""

from __future__ import annotations

from typing import Any

from tests.live import LiveServer


def test_regions(client: Any) -> None:
    regions = {r["slug"]: r for r in client.apps.list_regions()["regions"]}
    assert {"ams", "nyc", "fra", "sfo", "sgp", "blr", "tor", "lon", "syd", "atl"} <= set(regions)
    assert regions["nyc"]["default"] is True and regions["ams"]["data_centers"] == ["ams3"]
    assert regions["fra"]["label"] == "Frankfurt" and regions["fra"]["continent"] == "Europe"


def test_instance_sizes_list_and_get(client: Any) -> None:
    listed = client.apps.list_instance_sizes()
    sizes = {s["slug"]: s for s in listed["instance_sizes"]}
    smallest = sizes["apps-s-1vcpu-0.5gb"]
    assert smallest["usd_per_month"] == "5.00" and smallest["memory_bytes"] == "536870912"
    assert smallest["single_instance_only"] is True and smallest["cpu_type"] == "SHARED"
    assert sizes["apps-d-1vcpu-1gb"]["scalable"] is True
    assert "discount_percent" in listed
    assert client.apps.get_instance_size("apps-s-1vcpu-1gb")["instance_size"]["usd_per_month"] == "12.00"
    # Legacy slugs are still served (do-app-platform.md §3.4).
    assert client.apps.get_instance_size("basic-xxs")["instance_size"]["slug"] == "basic-xxs"
    assert client.apps.get_instance_size("no-such-size")["id"] == "not_found"


def test_deprecated_tiers_still_answer(server: LiveServer) -> None:
    with server.http() as http:
        tiers = http.get("/v2/apps/tiers").json()["tiers"]
        assert [t["slug"] for t in tiers] == ["starter", "basic", "professional"]
        assert http.get("/v2/apps/tiers/basic").json()["tier"]["build_seconds"] == "24000"
        missing = http.get("/v2/apps/tiers/gold")
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"


def test_account(client: Any) -> None:
    account = client.account.get()["account"]
    assert account["status"] == "active" and account["email_verified"] is True
    assert account["email"] and account["uuid"] and account["team"]["uuid"]
    assert isinstance(account["droplet_limit"], int) and isinstance(account["floating_ip_limit"], int)
