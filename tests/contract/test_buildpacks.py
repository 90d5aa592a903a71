"""godo-only buildpack routes as doctl calls them (issue 13 item 2): ``doctl apps list-buildpacks``
and ``doctl apps upgrade-buildpack APP --buildpack ID [--major-version N] [--trigger-deployment]``."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique_name, wait_deployment
from tests.doctl_console import GODO_HEADERS
from tests.live import LiveServer

GIT = {"repo_clone_url": "https://example.com/repo.git", "branch": "main"}


def test_list_buildpacks(server: LiveServer) -> None:
    with server.http() as http:
        answer = http.get("/v2/apps/buildpacks", headers=GODO_HEADERS)
    assert answer.status_code == 200
    packs = {b["id"]: b for b in answer.json()["buildpacks"]}
    # Every buildpack a build can use is listed (before, Go, PHP, Ruby ... were built with but not listed).
    assert {"digitalocean/python", "digitalocean/node", "digitalocean/go", "digitalocean/php", "digitalocean/ruby",
            "digitalocean/html", "digitalocean/hugo"} <= set(packs)
    python = packs["digitalocean/python"]
    assert python["major_version"] == 322 and python["version"].startswith("322.") and python["latest"] is True
    assert python["name"] and python["description"] and python["docs_link"].startswith("https://")


def test_upgrade_buildpack_pins_the_major_and_deploys(server: LiveServer, client: Any) -> None:
    spec = {"name": unique_name("bp"), "services": [{"name": "web", "git": GIT, "environment_slug": "node-js"},
                                                    {"name": "api", "git": GIT, "environment_slug": "python"}]}
    app = client.apps.create(body={"spec": spec})["app"]
    wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    path = f"/v2/apps/{app['id']}/upgrade_buildpack"
    with server.http() as http:
        # doctl: --major-version 0 (latest) and --trigger-deployment=true are its defaults
        done = http.post(path, json={"buildpack_id": "digitalocean/node", "major_version": 0,
                                     "trigger_deployment": True}, headers=GODO_HEADERS)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["affected_components"] == ["web"]
        dep = body["deployment"]
        assert dep["cause_details"]["digitalocean_user_action"]["name"] == "UPGRADE_BUILDPACK"
        quiet = http.post(path, json={"buildpack_id": "digitalocean/python", "major_version": 322,
                                      "trigger_deployment": False}, headers=GODO_HEADERS).json()
        assert quiet == {"affected_components": ["api"]}
        for bad in ({"buildpack_id": "digitalocean/cobol"}, {"buildpack_id": "digitalocean/node", "major_version": 7},
                    {"major_version": 1}):
            refused = http.post(path, json=bad, headers=GODO_HEADERS)
            assert refused.status_code == 400 and refused.json()["id"] == "bad_request", bad
    assert wait_deployment(client, app["id"], dep["id"])["phase"] == "ACTIVE"
    got = client.apps.get(app["id"])["app"]
    assert got["build_config"] == {"cnb_versioning": {"buildpacks": [
        {"id": "digitalocean/node", "major_version": 341}, {"id": "digitalocean/python", "major_version": 322}]}}
    client.apps.delete(app["id"])
