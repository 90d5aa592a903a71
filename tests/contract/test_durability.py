"""Every acknowledged write survives ``kill -9`` of the server, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import postgres_database, service_spec, unique_name


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_acknowledged_writes_survive_sigkill(fresh_server_factory: Any, request: pytest.FixtureRequest,
                                             backend: str) -> None:
    url = postgres_database(request.getfixturevalue("postgres")) if backend == "postgres" else None
    server = fresh_server_factory(database_url=url)
    client = server.client()

    def create(i: int) -> dict[str, Any]:
        return client.apps.create(body={"spec": service_spec(unique_name(f"k{i}"))})["app"]

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(40)))
    updated: dict[str, str] = {}
    for app in created[:20]:
        spec = service_spec(app["spec"]["name"], run_command=f"serve --id {app['id'][:8]}")
        client.apps.update(app["id"], body={"spec": spec})
        updated[app["id"]] = spec["services"][0]["run_command"]
    deleted = created[-1]["id"]
    client.apps.delete(deleted)

    server.kill()  # SIGKILL right after the last acknowledged write
    server.start()
    client = server.client()
    listed = {a["id"]: a for a in client.apps.list(per_page=200)["apps"]}
    assert set(listed) == {a["id"] for a in created} - {deleted}
    for app_id, command in updated.items():
        assert listed[app_id]["spec"]["services"][0]["run_command"] == command
    # The bootstrap token is not re-issued on restart, and the old one still works.
    assert client.account.get()["account"]["status"] == "active"
