"""Alerts delivered by a real ``shoal serve`` (simulate runtime) to a real SMTP server and a Slack-webhook
server on loopback, driven by pydo: once per firing, visible in the alert's phase and progress."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique_name, wait_deployment
from tests.live import LiveServer
from tests.receivers import HttpReceiver, ReceiverCa, Request, SmtpReceiver, wait_until


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ReceiverCa:
    return ReceiverCa(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    server = SmtpReceiver().start()
    yield server
    server.stop()


class Slack:
    """A Slack incoming-webhook server; ``answers`` is what the next requests get (then 200 ok)."""

    def __init__(self, ca: ReceiverCa) -> None:
        self.answers: list[int] = []
        self.receiver = HttpReceiver(ca.server_context(), respond=self._respond).start()

    def _respond(self, request: Request) -> tuple[int, bytes]:
        return (self.answers.pop(0), b"busy") if self.answers else (200, b"ok")

    def hook(self, path: str) -> dict[str, str]:
        return {"url": f"{self.receiver.url}/services/{path}", "channel": f"#{path}"}

    def texts(self, path: str) -> list[str]:
        return [r.json()["text"] for r in self.receiver.received() if r.path == f"/services/{path}"]


@pytest.fixture(scope="module")
def slack(ca: ReceiverCa) -> Iterator[Slack]:
    hook = Slack(ca)
    yield hook
    hook.receiver.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, ca: ReceiverCa, smtp: SmtpReceiver) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path_factory.mktemp("alerts") / "data", extra_args=[
        "--smtp-url", f"smtp://127.0.0.1:{smtp.port}?from=shoal@example.com", "--log-forward-ca", str(ca.ca_path),
        "--simulate-step-seconds", "0.1"]).start()
    yield server
    server.stop()


def _spec(name: str, *rules: str, fail: bool = False, **extra: Any) -> dict[str, Any]:
    envs = [{"key": "SHOAL_SIMULATE_FAIL", "value": "build"}] if fail else []
    return {"name": name, "alerts": [{"rule": r} for r in rules], **extra,
            "services": [{"name": "web", "git": {"repo_clone_url": "https://example.com/r.git", "branch": "main"},
                          "envs": envs}]}


def _created(client: Any, spec: dict[str, Any]) -> dict[str, Any]:
    app = client.apps.create(body={"spec": spec})["app"]
    assert wait_deployment(client, app["id"], app["pending_deployment"]["id"])["phase"] == "ACTIVE"
    return app


def _alert(client: Any, app_id: str, rule: str) -> dict[str, Any]:
    return next(a for a in client.apps.list_alerts(app_id)["alerts"] if a["spec"]["rule"] == rule)


def _mails(smtp: SmtpReceiver, app_name: str) -> list[str]:
    """Each message to this app's alerts as a reader sees it: its headers, then its decoded text."""
    found = []
    for _, _, content in smtp.messages:
        message = email.message_from_string(content, policy=email.policy.default)
        if app_name in str(message["Subject"]):
            headers = "".join(f"{k}: {v}\n" for k, v in message.items())
            found.append(headers + message.get_content())
    return found


def _update(client: Any, app_id: str, spec: dict[str, Any], phase: str) -> dict[str, Any]:
    dep_id = client.apps.update(app_id, body={"spec": spec})["app"]["pending_deployment"]["id"]
    dep = wait_deployment(client, app_id, dep_id)
    assert dep["phase"] == phase, dep["progress"]
    return dep


def test_a_failing_deployment_sends_one_email_and_one_slack_message(live: LiveServer, smtp: SmtpReceiver,
                                                                    slack: Slack) -> None:
    client = live.client()
    name = unique_name("fails")
    app = _created(client, _spec(name, "DEPLOYMENT_FAILED", "DEPLOYMENT_LIVE"))
    failed_alert = _alert(client, app["id"], "DEPLOYMENT_FAILED")
    client.apps.assign_alert_destinations(app["id"], failed_alert["id"], body={
        "emails": ["ops@example.com"], "slack_webhooks": [slack.hook(name)]})
    dep = _update(client, app["id"], _spec(name, "DEPLOYMENT_FAILED", "DEPLOYMENT_LIVE", fail=True), "ERROR")

    wait_until(lambda: _mails(smtp, name) and slack.texts(name), timeout=60)
    time.sleep(2)  # nothing more comes: once per firing
    (mail,) = _mails(smtp, name)
    (text,) = slack.texts(name)
    for message in (mail, text):
        assert "Deployment failed" in message and f"App: {name}" in message and "Rule: DEPLOYMENT_FAILED" in message
        assert f"/v2/apps/{app['id']}/deployments/{dep['id']}" in message and "BuildJobExitNonZero" in message
    assert "To: ops@example.com" in mail and f"Subject: [shoal] Deployment failed: {name}" in mail

    shown = _alert(client, app["id"], "DEPLOYMENT_FAILED")
    steps = {s["name"]: s for s in shown["progress"]["steps"]}
    assert shown["phase"] == "ACTIVE" and steps["alert-fired"]["reason"]["code"] == "DEPLOYMENT_FAILED"
    assert steps["notify-email:ops@example.com"]["status"] == "SUCCESS"
    assert steps[f"notify-slack:#{name}"]["status"] == "SUCCESS"

    live.stop()  # a restart sends nothing again
    live.start()
    time.sleep(3)
    assert len(_mails(smtp, name)) == 1 and len(slack.texts(name)) == 1


def test_started_live_canceled_and_domain_rules_fire_to_slack(live: LiveServer, slack: Slack) -> None:
    client = live.client()
    name = unique_name("events")
    rules = ("DEPLOYMENT_STARTED", "DEPLOYMENT_LIVE", "DEPLOYMENT_CANCELED", "DOMAIN_LIVE")
    app = _created(client, _spec(name, *rules))
    # The first deployment's firings take the destinations there were when they fired (none): wait
    # for them, so they are not confused with the next deployment's.
    wait_until(lambda: any(s["name"] == "alert-fired" for s in
                           _alert(client, app["id"], "DEPLOYMENT_LIVE")["progress"]["steps"]), timeout=30)
    for rule in rules:
        client.apps.assign_alert_destinations(app["id"], _alert(client, app["id"], rule)["id"],
                                              body={"slack_webhooks": [slack.hook(name)]})
    _update(client, app["id"], _spec(name, *rules, domains=[{"domain": f"{name}.example.com", "type": "PRIMARY"}]),
            "ACTIVE")
    wait_until(lambda: len(slack.texts(name)) >= 3, timeout=60)
    dep_id = client.apps.create_deployment(app["id"], body={})["deployment"]["id"]
    wait_until(lambda: client.apps.get_deployment(app["id"], dep_id)["deployment"]["phase"] == "BUILDING")
    client.apps.cancel_deployment(app["id"], dep_id)
    wait_until(lambda: any("Deployment canceled" in t for t in slack.texts(name)), timeout=60)
    time.sleep(1)
    titles = [t.splitlines()[0] for t in slack.texts(name)]
    assert sorted(titles) == sorted([f"*[shoal] {title}: {name}*" for title in (
        "Deployment started", "Deployment live", "Domain live", "Deployment started", "Deployment canceled")])
    assert any(f"{name}.example.com" in t for t in slack.texts(name) if "Domain live" in t)


def test_a_webhook_that_fails_at_first_is_retried_and_the_alert_shows_it(live: LiveServer, slack: Slack) -> None:
    client = live.client()
    name = unique_name("retry")
    app = _created(client, _spec(name, "DEPLOYMENT_FAILED"))
    alert = _alert(client, app["id"], "DEPLOYMENT_FAILED")
    client.apps.assign_alert_destinations(app["id"], alert["id"], body={"slack_webhooks": [slack.hook(name)]})
    slack.answers = [503]
    _update(client, app["id"], _spec(name, "DEPLOYMENT_FAILED", fail=True), "ERROR")

    def step() -> dict[str, Any]:
        found = _alert(client, app["id"], "DEPLOYMENT_FAILED")["progress"]["steps"]
        return next((s for s in found if s["name"] == f"notify-slack:#{name}"), {})

    retrying = wait_until(lambda: step().get("status") == "RUNNING" and step(), timeout=30)
    assert "answered 503" in retrying["reason"]["message"] and "attempt 1 of 6" in retrying["reason"]["message"]
    wait_until(lambda: step().get("status") == "SUCCESS", timeout=60)
    assert len(slack.texts(name)) == 2  # the attempt Slack refused, and the one it took


def test_without_an_smtp_server_email_alerts_are_shown_undeliverable(tmp_path: Path, slack: Slack) -> None:
    server = LiveServer(data_dir=tmp_path / "data", extra_args=[]).start()
    try:
        client = server.client()
        name = unique_name("nosmtp")
        app = _created(client, _spec(name, "DEPLOYMENT_FAILED"))
        alert = _alert(client, app["id"], "DEPLOYMENT_FAILED")
        client.apps.assign_alert_destinations(app["id"], alert["id"], body={
            "emails": ["ops@example.com"], "slack_webhooks": [{"url": "http://127.0.0.1:9/nothing", "channel": ""}]})
        _update(client, app["id"], _spec(name, "DEPLOYMENT_FAILED", fail=True), "ERROR")
        shown = wait_until(lambda: (a := _alert(client, app["id"], "DEPLOYMENT_FAILED"))["phase"] == "ERROR" and a,
                           timeout=60)
        mail = next(s for s in shown["progress"]["steps"] if s["name"] == "notify-email:ops@example.com")
        assert mail["status"] == "ERROR" and mail["reason"]["code"] == "Undeliverable"
        assert "--smtp-url" in mail["reason"]["message"]
    finally:
        server.stop()


def test_a_failed_job_invocation_fires_the_jobs_alert(live: LiveServer, slack: Slack) -> None:
    # Failed before: JOB_INVOCATION_FAILED was stored with the spec and never evaluated.
    client = live.client()
    name = unique_name("jobfail")
    git = {"repo_clone_url": "https://example.com/r.git", "branch": "main"}

    def spec(fail: bool) -> dict[str, Any]:
        envs = [{"key": "SHOAL_SIMULATE_FAIL", "value": "job"}] if fail else []
        return {"name": name, "services": [{"name": "web", "git": git}],
                "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", "git": git, "envs": envs,
                          "alerts": [{"rule": "JOB_INVOCATION_FAILED"}]}]}

    app = _created(client, spec(fail=False))
    alert = _alert(client, app["id"], "JOB_INVOCATION_FAILED")
    assert alert["component_name"] == "migrate"
    client.apps.assign_alert_destinations(app["id"], alert["id"], body={"emails": [],
                                                                       "slack_webhooks": [slack.hook(name)]})
    assert slack.texts(name) == []  # the first deployment's job succeeded
    _update(client, app["id"], spec(fail=True), "ERROR")
    failed = next(i for i in client.apps.list_job_invocations(app["id"])["job_invocations"] if i["phase"] == "FAILED")
    wait_until(lambda: slack.texts(name), timeout=60)
    time.sleep(1)
    (text,) = slack.texts(name)
    assert "Job invocation failed" in text and "Component: migrate" in text and failed["id"] in text
    assert "ContainerExitNonZero" in text
