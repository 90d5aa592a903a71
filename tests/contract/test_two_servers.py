"""Two real ``shoal serve`` on one embedded PostgreSQL, behind the same clients (pydo).

Both servers run ``--runtime simulate`` (the ownership and the change feed do not depend on the
runtime; the local runtime's side of a takeover is tested in ``tests/engine/test_custody.py``).
The second server shares the first one's CA, keys and admin token, as a multi-server setup must
(README: *Several servers on one PostgreSQL*).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_database, service_spec, unique_name, wait_deployment, wait_for
from tests.live import LiveServer

SHARED = ("tls", "signing.key", "secrets.key")  # what the second server copies from the first one's data dir


def twin(first: LiveServer, data_dir: Path, *extra: str) -> LiveServer:
    """A second server on the first one's database, with its CA, keys and admin token."""
    data_dir.mkdir(mode=0o700, parents=True)
    for name in SHARED:
        source = first.data_dir / name
        if source.is_dir():
            shutil.copytree(source, data_dir / name)
        else:
            shutil.copy2(source, data_dir / name)
    return LiveServer(data_dir=data_dir, database_url=first.database_url, token=first.token,
                      extra_args=list(extra or first.extra_args))


@pytest.fixture
def pair(postgres: Any, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    url = postgres_database(postgres)
    first = LiveServer(data_dir=tmp_path / "a", database_url=url, extra_args=["--simulate-step-seconds", "0.3"])
    started = [first.start()]
    try:
        second = twin(first, tmp_path / "b")
        started.append(second.start())
        yield first, second
    finally:
        for live in started:
            live.stop()


def appears(read: Any, timeout: float = 10) -> Any:
    """``read()`` until it is truthy, saying how long that took (the feed aims at well under a second)."""
    start = time.monotonic()
    value = wait_for(read, timeout=timeout, interval=0.02)
    return value, time.monotonic() - start


def test_an_update_through_one_is_read_through_the_other_at_once(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    app = a.apps.create(body={"spec": service_spec(unique_name())})["app"]
    wait_deployment(a, app["id"], app["pending_deployment"]["id"])
    seen = b.apps.get(app["id"])["app"]  # b has assembled (and cached) the app's view now
    assert seen["active_deployment"]["id"] == app["pending_deployment"]["id"]

    a.apps.update(app["id"], body={"spec": service_spec(app["spec"]["name"], run_command="v2")})
    _, took = appears(lambda: b.apps.get(app["id"])["app"]["spec"]["services"][0].get("run_command") == "v2")
    assert took < 5, f"b read the update after {took:.2f}s"
    names = {x["spec"]["name"] for x in b.apps.list()["apps"]}
    assert app["spec"]["name"] in names

    a.apps.delete(app["id"])
    appears(lambda: b.apps.get(app["id"]).get("id") == "not_found")


def test_deployments_through_either_server_reach_the_owner(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = (s.client() for s in pair)
    app = a.apps.create(body={"spec": service_spec(unique_name())})["app"]  # a claims it: a new app
    first = wait_deployment(a, app["id"], app["pending_deployment"]["id"])
    assert first["phase"] == "ACTIVE"
    for client in (a, b):  # both have assembled (and cached) the app's view
        assert client.apps.get(app["id"])["app"]["active_deployment"]["id"] == first["id"]

    dep = b.apps.create_deployment(app["id"], body={"force_build": True})["deployment"]
    done = wait_deployment(b, app["id"], dep["id"], timeout=60)
    assert done["phase"] == "ACTIVE"
    assert done["progress"]["success_steps"] == done["progress"]["total_steps"]
    assert a.apps.get(app["id"])["app"]["active_deployment"]["id"] == dep["id"]
    assert b.apps.get(app["id"])["app"]["active_deployment"]["id"] == dep["id"]

    # A cancel through the server that does not drive it stops it on the one that does.
    slow = b.apps.create_deployment(app["id"], body={"force_build": True})["deployment"]
    wait_for(lambda: b.apps.get_deployment(app["id"], slow["id"])["deployment"]["phase"] == "BUILDING")
    b.apps.cancel_deployment(app["id"], slow["id"])
    time.sleep(2)  # long enough for a pipeline that was not stopped to write its next step
    after = a.apps.get_deployment(app["id"], slow["id"])["deployment"]
    assert after["phase"] == "CANCELED"
    assert a.apps.get(app["id"])["app"]["active_deployment"]["id"] == dep["id"]


def test_a_revoked_token_is_refused_by_both(pair: tuple[LiveServer, LiveServer]) -> None:
    """(Also true before the feed: a server re-checks a token at least once a second.)"""
    value, token_id = pair[0].issue_token("app:read")
    for server in pair:
        assert server.http(token=value).get("/v2/apps").status_code == 200
    pair[0].shoal("token", "revoke", token_id[:12])
    for server in pair:
        assert server.http(token=value).get("/v2/apps").status_code == 401


def test_a_deployment_survives_kill_9_of_its_server_and_finishes_on_the_other(
        pair: tuple[LiveServer, LiveServer]) -> None:
    first, second = pair
    a, b = first.client(), second.client()
    app = a.apps.create(body={"spec": service_spec(unique_name())})["app"]
    active = wait_deployment(a, app["id"], app["pending_deployment"]["id"])
    update = a.apps.update(app["id"], body={"spec": service_spec(app["spec"]["name"], run_command="v2")})
    dep_id = update["app"]["pending_deployment"]["id"]
    wait_for(lambda: a.apps.get_deployment(app["id"], dep_id)["deployment"]["phase"] == "BUILDING", interval=0.02)

    first.kill()
    killed = time.monotonic()
    done = wait_deployment(b, app["id"], dep_id, timeout=60)
    assert done["phase"] == "ACTIVE", done.get("progress")
    assert done["progress"]["success_steps"] == done["progress"]["total_steps"]
    assert b.apps.get(app["id"])["app"]["active_deployment"]["id"] == dep_id
    print(f"kill -9 → ACTIVE on the other server: {time.monotonic() - killed:.2f}s")
    phases = {d["id"]: d["phase"] for d in b.apps.list_deployments(app["id"])["deployments"]}
    assert phases[active["id"]] == "SUPERSEDED"

    # The app is the second server's now: a new deployment through it runs there.
    again = b.apps.create_deployment(app["id"], body={"force_build": False})["deployment"]
    assert wait_deployment(b, app["id"], again["id"], timeout=60)["phase"] == "ACTIVE"


def test_scheduled_jobs_run_once_across_both_servers(postgres: Any, tmp_path: Path) -> None:
    """The app's owner runs its cron; the other server, which restored nothing, runs none."""
    url = postgres_database(postgres)
    first = LiveServer(data_dir=tmp_path / "a", database_url=url).start()
    second: LiveServer | None = None
    try:
        a = first.client()
        spec = service_spec(unique_name())
        spec["jobs"] = [{"name": "tick", "kind": "SCHEDULED", "run_command": "tick",
                         "git": {"repo_clone_url": "https://example.com/repo.git", "branch": "main"},
                         "schedule": {"cron": "* * * * *", "time_zone": "UTC"}}]
        app = a.apps.create(body={"spec": spec})["app"]
        assert wait_deployment(a, app["id"], app["pending_deployment"]["id"])["phase"] == "ACTIVE"
        # Started after the app went live: it finds an active deployment, which is not its to restore.
        second = twin(first, tmp_path / "b").start()

        def ticks() -> list[dict[str, Any]]:
            found = a.apps.list_job_invocations(app["id"], job_names=["tick"])["job_invocations"]
            return [i for i in found if i["trigger"]["type"] == "SCHEDULED"]

        wait_for(lambda: [i for i in ticks() if i["phase"] == "SUCCEEDED"], timeout=90, interval=0.5)
        time.sleep(3)  # a second run of the same minute would have started by now
        runs = ticks()
        minutes = [i["created_at"][:16] for i in runs]
        assert len(minutes) == len(set(minutes)), runs
    finally:
        for live in (first, second):
            if live is not None:
                live.stop()
