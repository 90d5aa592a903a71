"""Alerts, the engine's half: evaluating the event rules and delivering what fired.

Level-based, like the deployer: when the store reports that an app changed, its recently changed
deployments are re-read and every rule their state makes true (``domain.alerts.occurrences``) is
recorded as a firing — insert-once by id, so a rule fires once per deployment (or domain) however
often the app changes, and across restarts. A deployment's own spec says which alerts it has.
Deliveries are stored with the firing and sent from here, retried on the schedule in
``domain.alerts``; each attempt's outcome is what the alert's ``progress`` shows in the API.

Only deployments whose phase changed within ``HORIZON`` are looked at, so the first start of a
shoal that did not deliver alerts before does not announce every old deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from shoal.core.aio import within
from shoal.core.clock import Clock
from shoal.domain import alerts as rules
from shoal.domain.alerts import Delivery, Firing
from shoal.domain.changes import APP, EVERYTHING, Change
from shoal.domain.deployments import Deployment
from shoal.domain.plan import AppPlan, make_plan
from shoal.domain.ports import AlertStore, DeliveryFailed, DeploymentStore, Notifier

log = logging.getLogger("shoal.engine")
HORIZON = timedelta(minutes=15)
IDLE_SECONDS = 5.0
LEASE_SECONDS = 60.0  # a firing taken for delivery is this server's for this long (several servers)
SETTLE_SECONDS = 0.1  # a deployment's writes come in bursts: evaluate once per burst, not per write
NO_SMTP = "no SMTP server is configured, so email alerts cannot be sent (start shoal serve with --smtp-url)"
Link = Callable[[str, str], str]  # (app id, deployment id) → where to look


class AlertsEngine:
    def __init__(self, store: AlertStore, deployments: DeploymentStore, notifier: Notifier, clock: Clock,
                 link: Link) -> None:
        self._store = store
        self._deployments = deployments
        self._notifier = notifier
        self._clock = clock
        self._link = link
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._rescan = True  # look at every recently changed deployment (at start, and when the feed says so)
        self._seen: set[str] = set()  # firings already recorded (or found recorded)
        self._silent: set[str] = set()  # deployments whose spec has no event alerts (specs never change)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def changed(self, change: Change) -> None:
        """The store's change feed (this server's writes and, on a shared PostgreSQL, the others'),
        called from whatever thread heard it. Every server evaluates every app it hears of: a
        firing is recorded once whoever records it, and delivered by the server that takes it."""
        with self._lock:
            if change.kind == APP:
                self._dirty.add(change.key)
            elif change.kind == EVERYTHING:
                self._rescan = True
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        relay = asyncio.ensure_future(self._wake_on(stop))
        try:
            while not stop.is_set():
                await self._evaluate()
                delay = await self._deliver_due()
                with contextlib.suppress(TimeoutError):
                    await within(self._wake.wait(), delay)
                if not stop.is_set():
                    await asyncio.sleep(SETTLE_SECONDS)
                self._wake.clear()
        finally:
            relay.cancel()
            await self._notifier.close()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _evaluate(self) -> None:
        if self._rescan:  # what a restart may have interrupted, or what the feed may have missed
            self._rescan = False
            since = self._clock.now() - HORIZON
            apps = {dep.app_id for dep in await asyncio.to_thread(self._store.recent_deployments, since)}
            with self._lock:
                self._dirty |= apps
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for app_id in sorted(dirty):
            try:
                await self._evaluate_app(app_id)
            except Exception:  # one app's trouble must not stop alerts for the others
                log.exception("could not evaluate the alerts of app %s", app_id)

    async def _evaluate_app(self, app_id: str) -> None:
        since = self._clock.now() - HORIZON
        ids = set(await asyncio.to_thread(self._store.recent_deployment_ids, since, app_id)) - self._silent
        deps = (await asyncio.to_thread(self._deployments.deployments_by_ids, ids)).values() if ids else []
        for dep in sorted(deps, key=lambda d: d.created_at):
            plan = _plan(dep)
            wanted = [a for a in rules.alerts_of(plan)
                      if a.rule in rules.EVENT_RULES and not a.component and not a.disabled]
            if not wanted:
                if len(self._silent) > 50_000:
                    self._silent.clear()
                self._silent.add(dep.id)
                continue
            for occurrence in rules.occurrences(dep, plan, await self._live_domains(dep, wanted)):
                for alert in (a for a in wanted if a.rule == occurrence.rule):
                    await self.fire(plan, alert, occurrence)

    async def fire(self, plan: AppPlan, alert: rules.Alert, occurrence: rules.Occurrence) -> bool:
        """Record a firing of ``alert`` — once per subject — to be delivered to its destinations as
        they are now; True when this call recorded it. Any part of the engine may fire (metric
        rules, the autoscaler); delivery happens here."""
        ident = rules.firing_id(alert.id, occurrence.subject)
        if ident in self._seen:
            return False
        destinations = await asyncio.to_thread(self._store.alert_destinations, plan.app_id)
        firing = self._firing(ident, plan, alert, occurrence, destinations.get(alert.id, ([], [])))
        recorded = await asyncio.to_thread(self._store.record_firing, firing)
        if recorded:
            log.info("alert %s fired for app %s (%s)", alert.rule, plan.app_id, occurrence.subject)
            self._wake.set()
        self._remember(ident)
        return recorded

    async def fire_rule(self, plan: AppPlan, rule: str, occurrence: rules.Occurrence) -> None:
        """Fire every enabled app-level alert of ``plan`` with this rule (AUTOSCALE_* ...)."""
        for alert in rules.alerts_of(plan):
            if alert.rule == rule and not alert.component and not alert.disabled:
                await self.fire(plan, alert, occurrence)

    async def job_failed(self, plan: AppPlan, job: str, invocation_id: str, reason: str) -> None:
        """The pipeline's word that an invocation of ``job`` failed (scheduled or deploy-time)."""
        for alert, occurrence in rules.job_failed(rules.alerts_of(plan), job, invocation_id, plan.app_name, reason):
            await self.fire(plan, alert, occurrence)

    async def _live_domains(self, dep: Deployment, wanted: list[rules.Alert]) -> set[str]:
        """The domains the app served before ``dep`` (only looked up when a domain rule is set)."""
        if not dep.previous_deployment_id or not any(a.rule in (rules.DOMAIN_LIVE, rules.DOMAIN_FAILED) for a in wanted):
            return set()
        previous = await asyncio.to_thread(self._deployments.deployment_by_id, dep.previous_deployment_id)
        return {d.name for d in _plan(previous).domains} if previous else set()

    def _firing(self, ident: str, plan: AppPlan, alert: rules.Alert, occurrence: rules.Occurrence,
                destinations: tuple[list[str], list[dict[str, str]]]) -> Firing:
        now = self._clock.now()
        emails, hooks = destinations
        title, text = rules.compose(alert, occurrence, plan.app_name, plan.app_id,
                                    self._link(plan.app_id, plan.deployment_id))
        deliveries = [Delivery(rules.EMAIL, address) if self._notifier.mail_configured
                      else rules.undeliverable(rules.EMAIL, address, now, NO_SMTP) for address in emails]
        deliveries += [Delivery(rules.SLACK, str(h.get("url") or ""), str(h.get("channel") or "")) for h in hooks
                       if h.get("url")]
        return Firing(id=ident, alert_id=alert.id, app_id=plan.app_id, component=alert.component, rule=alert.rule,
                      subject=occurrence.subject, fired_at=now, title=title, text=text, deliveries=tuple(deliveries))

    def _remember(self, ident: str) -> None:
        if len(self._seen) > 50_000:  # forgetting only costs an insert that finds the row already there
            self._seen.clear()
        self._seen.add(ident)

    async def _deliver_due(self) -> float:
        """Attempt every delivery that is due; seconds until the next one is (at most IDLE_SECONDS)."""
        now = self._clock.now()
        for firing in await asyncio.to_thread(self._store.take_due, now, now + timedelta(seconds=LEASE_SECONDS)):
            deliveries = []
            for delivery in firing.deliveries:
                due = delivery.open and (delivery.next_attempt_at or firing.fired_at) <= now
                deliveries.append(await self._attempt(firing, delivery) if due else delivery)
            await asyncio.to_thread(self._store.save_firing, replace(firing, deliveries=tuple(deliveries)))
        upcoming = await asyncio.to_thread(self._store.due_firings, now + timedelta(seconds=IDLE_SECONDS), 1)
        if not upcoming or upcoming[0].next_attempt_at is None:
            return IDLE_SECONDS
        return max(0.05, min(IDLE_SECONDS, (upcoming[0].next_attempt_at - self._clock.now()).total_seconds()))

    async def _attempt(self, firing: Firing, delivery: Delivery) -> Delivery:
        try:
            if delivery.kind == rules.EMAIL:
                await self._notifier.email(delivery.target, firing.title, firing.text)
            else:
                await self._notifier.slack(delivery.target, delivery.channel, f"*{firing.title}*\n{firing.text}")
        except DeliveryFailed as exc:
            log.warning("alert %s of app %s: %s delivery failed: %s", firing.rule, firing.app_id, delivery.kind,
                        exc.message)
            return rules.attempted(delivery, self._clock.now(), exc.message, exc.permanent)
        return rules.attempted(delivery, self._clock.now(), None)


def _plan(dep: Deployment) -> AppPlan:
    return make_plan(dep.spec, app_id=dep.app_id, deployment_id=dep.id,
                     previous_deployment_id=dep.previous_deployment_id)
