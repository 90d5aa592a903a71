"""The logs API: signed historic downloads, live websocket frames, the streamed HTTP form, and refusals."""

from __future__ import annotations

import json
import ssl
import threading
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from websockets.sync.client import connect

from tests.conftest import error_body, service_spec, unique_name, wait_deployment
from tests.live import LiveServer


def test_the_four_log_endpoints_and_their_downloads(client: Any, server: LiveServer) -> None:
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    answers = [
        client.apps.get_logs(created["id"], dep["id"], "web", type="BUILD"),
        client.apps.get_logs_aggregate(created["id"], dep["id"], type="DEPLOY"),
        client.apps.get_logs_active_deployment(created["id"], "web", type="RUN", follow=True),
        client.apps.get_logs_active_deployment_aggregate(created["id"], type="BUILD"),
    ]
    for answer in answers:
        assert set(answer) == {"live_url", "historic_urls"} and len(answer["historic_urls"]) == 1
    assert answers[0]["live_url"] == ""  # the build is over: history only
    assert answers[2]["live_url"].startswith("wss://") and "token=" in answers[2]["live_url"]
    with server.http(anonymous=True) as http:  # historic URLs need no auth header
        build = http.get(answers[0]["historic_urls"][0])
        assert build.status_code == 200 and build.headers["content-type"].startswith("text/plain")
        lines = build.text.splitlines()
        assert lines and all(line.split(" ", 2)[0] == "web" for line in lines)
        assert lines[-1].endswith("=> Build complete") and "T" in lines[0].split(" ")[1]
        assert "Traffic switched" in http.get(answers[1]["historic_urls"][0]).text
        with server.http() as authed:  # pydo has no tail_lines here; godo sends it on every logs call
            tail = authed.get(f"/v2/apps/{created['id']}/deployments/{dep['id']}/components/web/logs",
                              params={"type": "BUILD", "tail_lines": 2}).json()
        assert len(http.get(tail["historic_urls"][0]).text.splitlines()) == 2
        forged = answers[0]["historic_urls"][0][:-4] + "AAAA"
        assert http.get(forged).status_code == 401


def test_refusals(client: Any) -> None:
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    # A component the app does not have is 404 with a well-formed body (pydo returns it).
    assert client.apps.get_logs(created["id"], dep["id"], "nope", type="BUILD")["id"] == "not_found"
    restart = client.apps.restart(created["id"], body={})["deployment"]
    wait_deployment(client, created["id"], restart["id"])
    with pytest.raises(HttpResponseError) as raised:  # a restart never built: BUILD logs never existed
        client.apps.get_logs(created["id"], restart["id"], "web", type="BUILD")
    assert raised.value.status_code == 400 and "BUILD" in error_body(raised.value)["message"]
    with pytest.raises(HttpResponseError):
        client.apps.get_logs(created["id"], dep["id"], "web", type="SIDEWAYS")


def _context(server: LiveServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca)


def test_live_url_streams_websocket_frames_while_a_deployment_runs(fresh_server_factory: Any) -> None:
    server: LiveServer = fresh_server_factory("--simulate-step-seconds", "0.4")
    client = server.client()
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    dep_id = created["pending_deployment"]["id"]
    live = client.apps.get_logs_aggregate(created["id"], dep_id, type="DEPLOY", follow=True)
    frames: list[dict[str, str]] = []
    done = threading.Event()

    def follow() -> None:
        with connect(live["live_url"], ssl=_context(server), open_timeout=10) as socket:
            for message in socket:
                frames.append(json.loads(message))
        done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_deployment(client, created["id"], dep_id)
    assert done.wait(20), "the live stream should close once the deploy stage is over"
    text = "".join(f["data"] for f in frames)
    assert all(set(f) == {"data"} for f in frames) and len(frames) >= 3
    assert "Traffic switched to the new deployment" in text


def test_live_url_in_its_plain_http_form(client: Any, server: LiveServer) -> None:
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    live = client.apps.get_logs_active_deployment_aggregate(created["id"], type="RUN", follow=True)["live_url"]
    url = live.replace("wss://", "https://", 1)
    with server.http(anonymous=True) as http, http.stream("GET", url) as response:
        assert response.status_code == 200
        first = next(response.iter_lines())
    assert first.startswith("web ") and "started" in first
    assert dep["phase"] == "ACTIVE"


def test_without_follow_there_is_no_live_url_so_doctl_reads_the_history_and_returns(client: Any,
                                                                                     server: LiveServer) -> None:
    # doctl apps logs APP web --type run (no --follow): godo sends follow=false; doctl follows a
    # live_url whenever there is one, so there must be none (issue 13 item 3).
    created = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    with server.http() as http:
        path = f"/v2/apps/{created['id']}/components/web/logs"
        answer = http.get(path, params={"type": "RUN", "follow": "false", "tail_lines": "-1"}).json()
        assert answer["live_url"] == "" and len(answer["historic_urls"]) == 1
        assert http.get(path, params={"type": "RUN"}).json()["live_url"] == ""  # follow left out: false
        assert http.get(path, params={"type": "RUN", "follow": "true"}).json()["live_url"].startswith("wss://")
        for bad in ("2", "yes", ""):
            refused = http.get(path, params={"type": "RUN", "follow": bad})
            assert refused.status_code == 400 and "follow" in refused.json()["message"], bad
    with server.http(anonymous=True) as http:
        assert "started" in http.get(answer["historic_urls"][0]).text


def test_run_logs_of_a_failed_deployment_are_served(client: Any, server: LiveServer) -> None:
    spec = service_spec(unique_name(), envs=[{"key": "SHOAL_SIMULATE_FAIL", "value": "health"}])
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    assert dep["phase"] == "ERROR"
    answer = client.apps.get_logs(created["id"], dep["id"], "web", type="RUN")
    assert answer["live_url"] == ""
    deploy = client.apps.get_logs(created["id"], dep["id"], "web", type="DEPLOY")
    with server.http(anonymous=True) as http:
        assert http.get(answer["historic_urls"][0]).status_code == 200
        assert "failed its health checks" in http.get(deploy["historic_urls"][0]).text


def test_a_finished_job_invocation_has_logs_that_end(client: Any, server: LiveServer) -> None:
    spec = {**service_spec(unique_name()), "jobs": [
        {"name": "migrate", "kind": "PRE_DEPLOY", "run_command": "migrate.sh",
         "git": {"repo_clone_url": "https://example.com/repo.git", "branch": "main"}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    wait_deployment(client, created["id"], created["pending_deployment"]["id"])
    [invocation] = client.apps.list_job_invocations(created["id"])["job_invocations"]
    assert invocation["phase"] == "SUCCEEDED"
    answer = client.apps.get_job_invocation_logs(created["id"], "migrate", invocation["id"], type="JOB_INVOCATION",
                                                 follow=True)
    assert answer["live_url"] == ""  # finished: nothing more will come, so there is nothing to follow
    with server.http(anonymous=True) as http:
        text = http.get(answer["historic_urls"][0]).text
    assert "Running job migrate" in text and all(line.startswith("migrate ") for line in text.splitlines())
