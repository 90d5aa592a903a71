"""Alerts as values: what a deployment's state fires, the retry schedule, and the progress the API shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shoal.domain import alerts as rules
from shoal.domain.alerts import Delivery, Firing
from shoal.domain.deployments import Deployment, Phase
from shoal.domain.plan import make_plan, units_of
from shoal.domain.progress import build_tree

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
APP = "00000000-0000-4000-8000-000000000001"


def _dep(phase: Phase, spec: dict[str, Any] | None = None, started: bool = True, **extra: Any) -> Deployment:
    spec = spec or {"name": "shop", "services": [{"name": "web"}]}
    tree = build_tree(units_of(spec))
    if started:
        tree[0]["steps"][0]["status"] = "SUCCESS"
    return Deployment(id="dep-2", app_id=APP, account_id="acct", spec=spec, phase=phase, phase_last_updated_at=NOW,
                      created_at=NOW, updated_at=NOW, cause="manual", cause_details={}, progress=tree, components=[],
                      **extra)


def _plan(dep: Deployment) -> Any:
    return make_plan(dep.spec, app_id=dep.app_id, deployment_id=dep.id)


def _rules(dep: Deployment, live: set[str] | None = None) -> list[tuple[str, str]]:
    return [(o.rule, o.subject) for o in rules.occurrences(dep, _plan(dep), live or set())]


def test_each_phase_fires_its_deployment_rules_in_the_order_they_happened() -> None:
    assert _rules(_dep(Phase.PENDING_BUILD, started=False)) == []
    assert _rules(_dep(Phase.BUILDING)) == [("DEPLOYMENT_STARTED", "dep-2")]
    assert _rules(_dep(Phase.ACTIVE)) == [("DEPLOYMENT_STARTED", "dep-2"), ("DEPLOYMENT_LIVE", "dep-2")]
    failed = _dep(Phase.ERROR, ended_reason={"code": "BuildJobExitNonZero", "message": "exit 1"})
    assert _rules(failed) == [("DEPLOYMENT_STARTED", "dep-2"), ("DEPLOYMENT_FAILED", "dep-2")]
    assert rules.occurrences(failed, _plan(failed), set())[1].reason == "BuildJobExitNonZero: exit 1"
    assert _rules(_dep(Phase.CANCELED)) == [("DEPLOYMENT_STARTED", "dep-2"), ("DEPLOYMENT_CANCELED", "dep-2")]


def test_a_deployment_canceled_before_it_started_never_started() -> None:
    assert _rules(_dep(Phase.CANCELED, started=False)) == [("DEPLOYMENT_CANCELED", "dep-2")]


def test_a_superseded_deployment_was_live_only_if_it_finished_deploying() -> None:
    assert ("DEPLOYMENT_LIVE", "dep-2") in _rules(_dep(Phase.SUPERSEDED, timing={"_deploy_ended": "x"}))
    assert ("DEPLOYMENT_LIVE", "dep-2") not in _rules(_dep(Phase.SUPERSEDED))


def test_only_new_domains_go_live_or_fail() -> None:
    spec = {"name": "shop", "services": [{"name": "web"}],
            "domains": [{"domain": "old.example.com"}, {"domain": "new.example.com"}]}
    assert ("DOMAIN_LIVE", "dep-2/new.example.com") in _rules(_dep(Phase.ACTIVE, spec), {"old.example.com"})
    assert [r for r in _rules(_dep(Phase.ACTIVE, spec), {"old.example.com"}) if r[0] == "DOMAIN_LIVE"] == [
        ("DOMAIN_LIVE", "dep-2/new.example.com")]
    assert [r for r in _rules(_dep(Phase.ERROR, spec), set()) if r[0] == "DOMAIN_FAILED"] == [
        ("DOMAIN_FAILED", "dep-2/old.example.com"), ("DOMAIN_FAILED", "dep-2/new.example.com")]


def test_alerts_of_a_spec_keep_their_ids_and_components() -> None:
    spec = {"name": "shop", "alerts": [{"rule": "DEPLOYMENT_FAILED"}, {"rule": "DEPLOYMENT_LIVE", "disabled": True}],
            "services": [{"name": "web", "alerts": [{"rule": "CPU_UTILIZATION", "value": 80}]}]}
    found = rules.alerts_of(make_plan(spec, app_id=APP, deployment_id="d"))
    assert [(a.component, a.rule, a.disabled) for a in found] == [
        ("", "DEPLOYMENT_FAILED", False), ("", "DEPLOYMENT_LIVE", True), ("web", "CPU_UTILIZATION", False)]
    assert found[0].id == rules.alert_id(APP, "", "DEPLOYMENT_FAILED")
    assert rules.firing_id(found[0].id, "dep-2") == rules.firing_id(found[0].id, "dep-2") != \
        rules.firing_id(found[0].id, "dep-3")


def test_a_failing_delivery_is_retried_on_the_schedule_then_given_up() -> None:
    delivery = Delivery(rules.SLACK, "https://hooks.example.com/T/B/x", "#ops")
    when = NOW
    for delay in rules.RETRY_DELAYS:
        delivery = rules.attempted(delivery, when, "answered 500")
        assert delivery.open and delivery.next_attempt_at == when + timedelta(seconds=delay)
        when = delivery.next_attempt_at
    delivery = rules.attempted(delivery, when, "answered 500")
    assert delivery.status == rules.ERROR and delivery.attempts == len(rules.RETRY_DELAYS) + 1
    assert delivery.started_at == NOW and delivery.ended_at == when


def test_a_refusal_for_good_is_not_retried_and_success_clears_the_error() -> None:
    delivery = Delivery(rules.EMAIL, "ops@example.com")
    assert rules.attempted(delivery, NOW, "550 no such user", permanent=True).status == rules.ERROR
    retried = rules.attempted(delivery, NOW, "connection refused")
    done = rules.attempted(retried, NOW + timedelta(seconds=5), None)
    assert (done.status, done.attempts, done.last_error, done.next_attempt_at) == (rules.SUCCESS, 2, "", None)


def _firing(*deliveries: Delivery) -> Firing:
    return Firing(id="f", alert_id="a", app_id=APP, component="", rule="DEPLOYMENT_FAILED", subject="dep-2",
                  fired_at=NOW, title="[shoal] Deployment failed: shop", text="Deployment dep-2 of shop failed\n",
                  deliveries=deliveries)


def test_progress_shows_what_fired_and_how_each_delivery_went() -> None:
    hook = rules.attempted(Delivery(rules.SLACK, "https://hooks.example.com/services/T/B/secret", "#ops"), NOW,
                           "answered 500")
    mail = rules.undeliverable(rules.EMAIL, "ops@example.com", NOW, "no SMTP server is configured")
    firing = _firing(mail, hook)
    steps = rules.progress_steps(firing)
    assert steps[0]["name"] == "alert-fired" and steps[0]["reason"]["code"] == "DEPLOYMENT_FAILED"
    assert (steps[1]["name"], steps[1]["status"], steps[1]["reason"]["code"]) == (
        "notify-email:ops@example.com", "ERROR", "Undeliverable")
    assert (steps[2]["name"], steps[2]["status"]) == ("notify-slack:#ops", "RUNNING")
    assert "attempt 1 of 6, next at 2026-03-01T12:00:05Z" in steps[2]["reason"]["message"]
    assert "secret" not in str(steps)  # a webhook URL is a credential
    assert firing.failed and firing.next_attempt_at == NOW + timedelta(seconds=5)
    delivered = replace(firing, deliveries=(rules.attempted(hook, NOW, None),))
    assert not delivered.failed and delivered.next_attempt_at is None


def test_messages_name_the_app_the_component_the_rule_and_a_link() -> None:
    alert = rules.alerts_of(make_plan({"name": "shop", "alerts": [{"rule": "DEPLOYMENT_FAILED"}]}, app_id=APP,
                                      deployment_id="d"))[0]
    failed = _dep(Phase.ERROR, ended_reason={"code": "X", "message": "y"})
    occurrence = rules.occurrences(failed, _plan(failed), set())[1]
    title, text = rules.compose(alert, occurrence, "shop", APP, "https://shoal:8443/v2/apps/a/deployments/d")
    assert title == "[shoal] Deployment failed: shop"
    for part in ("App: shop", "Component: (the whole app)", "Rule: DEPLOYMENT_FAILED", "Reason: X: y",
                 "Link: https://shoal:8443/v2/apps/a/deployments/d"):
        assert part in text
