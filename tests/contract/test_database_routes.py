"""godo's database routes on the simulate runtime (and the store backends): an app's dev databases
are listed once a deployment provisioned them, and a reset is a new deployment with a new password."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique_name, wait_deployment
from tests.live import LiveServer


def test_details_list_the_provisioned_databases_and_a_reset_changes_only_its_password(
        server: LiveServer, client: Any) -> None:
    spec = {"name": unique_name("dbs"), "databases": [{"name": "db", "engine": "PG"}, {"name": "cache"}],
            "services": [{"name": "web", "image": {"registry_type": "DOCKER_HUB", "registry": "library",
                                                   "repository": "nginx"}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    with server.http() as http:
        path = f"/v2/apps/{created['id']}/database_connection_details"
        wait_deployment(client, created["id"], created["pending_deployment"]["id"])
        before = {d["component_name"]: d for d in http.get(path).json()["connection_details"]}
        assert set(before) == {"db", "cache"}
        assert before["db"]["database_url"].startswith("postgresql://db:")
        assert before["cache"]["database_url"].startswith("postgresql://cache:")

        reset = http.post(f"/v2/apps/{created['id']}/components/cache/reset_password")
        assert reset.status_code == 200, reset.text
        dep = reset.json()["deployment"]
        assert dep["cause"] == "database password reset"
        assert wait_deployment(client, created["id"], dep["id"])["phase"] == "ACTIVE"
        after = {d["component_name"]: d for d in http.get(path).json()["connection_details"]}
        assert after["db"] == before["db"] and after["cache"]["password"] != before["cache"]["password"]
    client.apps.delete(created["id"])
