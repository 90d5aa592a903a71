"""The alerts engine on a real SQLite store and a fake clock, with a memory twin of the Notifier port:
once per firing across changes and restarts, undeliverable email, retries on schedule."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shoal.core.clock import FakeClock
from shoal.domain import alerts as rules
from shoal.domain.apps import App
from shoal.domain.changes import Change
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.plan import make_plan, units_of
from shoal.domain.ports import DeliveryFailed
from shoal.domain.progress import build_tree
from shoal.engine.alerts import HORIZON, AlertsEngine
from shoal.store import Database, open_database
from tests.conftest import BACKENDS, postgres_database

APP = "00000000-0000-4000-8000-000000000001"


class MemoryNotifier:
    """The Notifier port's memory twin: keeps what it was asked to send; fails as told."""

    def __init__(self, mail: bool = True) -> None:
        self.mail_configured = mail
        self.sent: list[tuple[str, str, str]] = []
        self.slack_failures: list[DeliveryFailed] = []

    async def email(self, to: str, subject: str, text: str) -> None:
        self.sent.append(("email", to, subject))

    async def slack(self, url: str, channel: str, text: str) -> None:
        if self.slack_failures:
            raise self.slack_failures.pop(0)
        self.sent.append(("slack", channel, text.splitlines()[0]))

    async def close(self) -> None:
        return None


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = postgres_database(request.getfixturevalue("postgres")) if request.param == "postgres" else \
        f"sqlite:///{tmp_path / 'state.db'}"
    database = open_database(url)
    yield database
    database.close()


def _spec(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"name": "shop", "services": [{"name": "web"}], "alerts": list(alerts)}


def _deploy(db: Database, clock: FakeClock, spec: dict[str, Any]) -> Deployment:
    account = db.accounts.ensure_account("admin", "admin@example.com")
    now = clock.now()
    dep = Deployment(id="00000000-0000-4000-8000-0000000000d1", app_id=APP, account_id=account.id, spec=spec,
                     phase=Phase.PENDING_BUILD, phase_last_updated_at=now, created_at=now, updated_at=now,
                     cause="manual", cause_details={}, progress=build_tree(units_of(spec)), components=[])
    db.apps.insert_app(App(id=APP, account_id=account.id, name="shop", spec=spec, region="ams", ingress_host="h",
                           tier_slug="basic", project_id="p", created_at=now, updated_at=now), dep)
    return db.deployments.deployment_by_id(dep.id)  # type: ignore[return-value]


def _fail(db: Database, clock: FakeClock, dep: Deployment) -> Deployment:
    moved = replace(dep.moved_to(Phase.BUILDING, clock.now()), progress=dep.progress)
    saved = db.deployments.save_deployment(moved)
    assert saved is not None
    failed = replace(saved.moved_to(Phase.ERROR, clock.now()), ended_reason={"code": "BuildJobExitNonZero",
                                                                             "message": "exit status 1"})
    done = db.deployments.save_deployment(failed)
    assert done is not None
    return done


def _engine(db: Database, clock: FakeClock, notifier: MemoryNotifier) -> AlertsEngine:
    engine = AlertsEngine(db.alerts, db.deployments, notifier, clock,
                          link=lambda app, dep: f"https://shoal/v2/apps/{app}/deployments/{dep}")
    db.changes.subscribe(engine.changed)
    return engine


def _running(engine: AlertsEngine, body: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        try:
            await body()
        finally:
            stop.set()
            await task

    asyncio.run(main())


async def _until(check: Callable[[], Any], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the timeout")


def _destinations(db: Database, rule: str, emails: list[str], hooks: list[dict[str, str]]) -> None:
    db.alerts.set_alert_destinations(rules.alert_id(APP, "", rule), APP, "", rule, {"rule": rule}, emails, hooks)


def test_a_failed_deployment_is_sent_once_across_changes_and_restarts(db: Database) -> None:
    clock = FakeClock()
    dep = _deploy(db, clock, _spec({"rule": "DEPLOYMENT_FAILED"}, {"rule": "DEPLOYMENT_STARTED"}))
    _destinations(db, "DEPLOYMENT_FAILED", ["ops@example.com"], [{"url": "https://hooks/T/B/x", "channel": "#ops"}])
    notifier = MemoryNotifier()
    engine = _engine(db, clock, notifier)

    async def body() -> None:
        _fail(db, clock, dep)
        await _until(lambda: len(notifier.sent) == 2)
        for _ in range(5):
            engine.changed(Change("app", APP))
            await asyncio.sleep(0.05)

    _running(engine, body)
    assert sorted(notifier.sent) == [("email", "ops@example.com", "[shoal] Deployment failed: shop"),
                                     ("slack", "#ops", "*[shoal] Deployment failed: shop*")]
    again = MemoryNotifier()  # shoal restarted: the firing is in the store already
    _running(_engine(db, clock, again), lambda: asyncio.sleep(0.3))
    assert again.sent == []
    latest = db.alerts.latest_firings(APP)
    started = latest[rules.alert_id(APP, "", "DEPLOYMENT_STARTED")]
    assert started.deliveries == ()  # fired, but nobody to tell
    failed = latest[rules.alert_id(APP, "", "DEPLOYMENT_FAILED")]
    assert [d.status for d in failed.deliveries] == ["SUCCESS", "SUCCESS"] and "exit status 1" in failed.text


def test_without_smtp_email_is_recorded_undeliverable_and_slack_still_goes(db: Database) -> None:
    clock = FakeClock()
    dep = _deploy(db, clock, _spec({"rule": "DEPLOYMENT_FAILED"}))
    _destinations(db, "DEPLOYMENT_FAILED", ["ops@example.com"], [{"url": "https://hooks/T/B/x", "channel": ""}])
    notifier = MemoryNotifier(mail=False)
    engine = _engine(db, clock, notifier)

    async def body() -> None:
        _fail(db, clock, dep)
        await _until(lambda: notifier.sent)

    _running(engine, body)
    (firing,) = db.alerts.latest_firings(APP).values()
    mail, hook = firing.deliveries
    assert (mail.status, hook.status) == ("UNDELIVERABLE", "SUCCESS") and "--smtp-url" in mail.last_error
    assert firing.failed and [s[0] for s in notifier.sent] == ["slack"]


def test_a_failing_webhook_is_retried_on_schedule_until_it_answers(db: Database) -> None:
    clock = FakeClock()
    dep = _deploy(db, clock, _spec({"rule": "DEPLOYMENT_FAILED"}))
    _destinations(db, "DEPLOYMENT_FAILED", [], [{"url": "https://hooks/T/B/x", "channel": "#ops"}])
    notifier = MemoryNotifier()
    notifier.slack_failures = [DeliveryFailed("answered 500"), DeliveryFailed("answered 503")]
    engine = _engine(db, clock, notifier)

    def hook() -> rules.Delivery:
        return next(iter(db.alerts.latest_firings(APP).values())).deliveries[0]

    async def body() -> None:
        _fail(db, clock, dep)
        await _until(lambda: db.alerts.latest_firings(APP) and hook().attempts == 1)
        assert hook().open and hook().last_error == "answered 500"
        await asyncio.sleep(0.2)
        assert hook().attempts == 1  # not before its time
        clock.advance(rules.RETRY_DELAYS[0])
        engine.changed(Change("app", APP))
        await _until(lambda: hook().attempts == 2)
        clock.advance(rules.RETRY_DELAYS[1])
        engine.changed(Change("app", APP))
        await _until(lambda: hook().status == "SUCCESS")

    _running(engine, body)
    assert hook().attempts == 3 and notifier.sent == [("slack", "#ops", "*[shoal] Deployment failed: shop*")]


def test_disabled_alerts_and_deployments_past_the_horizon_fire_nothing(db: Database) -> None:
    clock = FakeClock()
    dep = _deploy(db, clock, _spec({"rule": "DEPLOYMENT_FAILED", "disabled": True}, {"rule": "DEPLOYMENT_STARTED"}))
    _fail(db, clock, dep)
    clock.advance(HORIZON.total_seconds() + 60)
    _running(_engine(db, clock, MemoryNotifier()), lambda: asyncio.sleep(0.3))
    assert db.alerts.latest_firings(APP) == {}
