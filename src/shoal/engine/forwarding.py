"""Log forwarding, the engine's half: which destinations each log line goes to, and telling the
deployment's log when lines had to be dropped.

Every line the log buffer stores (already masked) is offered here, from whatever thread flushed
it. ``run`` routes them by their deployment's spec — the component's ``log_destinations``, with an
OpenSearch ``cluster_name`` resolved to the registered cluster — and hands them to the
``LogForwarder`` port, which does the network part. Lines of app-level steps (component ``build``
or ``deploy``) belong to no component, so they have no destination.

Reports of dropped lines are written straight to the store, not through the log buffer, so a
report is never itself forwarded to the destination that is failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from shoal.core.aio import within
from shoal.core.clock import Clock
from shoal.domain.deployments import Phase
from shoal.domain.forwarding import Destination, Dropped, Record, clipped, destinations
from shoal.domain.logs import LogLine
from shoal.domain.plan import make_plan
from shoal.domain.ports import DeploymentStore, LogForwarder

log = logging.getLogger("shoal.engine")
REPORT_SECONDS = 5.0
MAX_PENDING = 50_000  # lines waiting to be routed; beyond it (the loop is stuck) they are dropped
CACHED_ROUTES = 256
Clusters = Callable[[str], tuple[str, str] | None]  # cluster name → (engine, URL)


@dataclass(frozen=True)
class _Routes:
    app_id: str
    app_name: str
    by_component: dict[str, list[Destination]]


class LogForwarding:
    def __init__(self, store: DeploymentStore, forwarder: LogForwarder, clusters: Clusters, clock: Clock) -> None:
        self._store = store
        self._forwarder = forwarder
        self._clusters = clusters
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[LogLine] = []
        self._overflow = 0
        self._routes: OrderedDict[str, _Routes | None] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    def offer(self, lines: list[LogLine]) -> None:
        """Lines the log buffer just stored; callable from any thread, never blocks for long."""
        with self._lock:
            room = MAX_PENDING - len(self._pending)
            if room < len(lines):
                self._overflow += len(lines) - max(room, 0)
                lines = lines[:max(room, 0)]
            self._pending.extend(lines)
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while a last flush ran
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Route lines until ``stop``; then route the last ones and let the forwarder drain."""
        self._loop = asyncio.get_running_loop()
        done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._forwarder.run(done))
            group.create_task(self._wake_on(stop))
            next_report = self._loop.time() + REPORT_SECONDS
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await within(self._wake.wait(), REPORT_SECONDS)
                self._wake.clear()
                await self._route_pending()
                if self._loop.time() >= next_report:
                    await self._report(self._forwarder.dropped())
                    next_report = self._loop.time() + REPORT_SECONDS
            await self._route_pending()
            done.set()
        await self._report(self._forwarder.dropped())

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _route_pending(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            overflow, self._overflow = self._overflow, 0
        if overflow:
            log.warning("log forwarding fell behind: %d lines were not forwarded", overflow)
        batches: dict[Destination, list[Record]] = {}
        for line in lines:
            routes = await self._routes_of(line.deployment_id)
            if routes is None:
                continue
            for dest in routes.by_component.get(line.component, ()):
                batches.setdefault(dest, []).append(Record(
                    routes.app_id, routes.app_name, line.deployment_id, line.component, line.stage, line.ts,
                    clipped(line.line)))
        for dest, records in batches.items():
            self._forwarder.forward(dest, records)

    async def _routes_of(self, deployment_id: str) -> _Routes | None:
        if deployment_id in self._routes:
            self._routes.move_to_end(deployment_id)
            return self._routes[deployment_id]
        dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
        routes = None
        if dep is not None:
            plan = make_plan(dep.spec, app_id=dep.app_id, deployment_id=dep.id)
            found = destinations(plan)
            problems: list[LogLine] = []
            for name, dests in found.items():
                found[name] = [d for d in [await self._resolved(d, deployment_id, problems) for d in dests] if d]
            if problems:
                await asyncio.to_thread(self._store.append_logs, problems)
            routes = _Routes(plan.app_id, plan.app_name, {k: v for k, v in found.items() if v})
        self._routes[deployment_id] = routes
        while len(self._routes) > CACHED_ROUTES:
            self._routes.popitem(last=False)
        return routes

    async def _resolved(self, dest: Destination, deployment_id: str, problems: list[LogLine]) -> Destination | None:
        """An OpenSearch destination by ``cluster_name`` gets the registered cluster's URL and password
        (its user defaults to doadmin, §4.4); one naming no such cluster is reported and left out."""
        if dest.kind != "open_search" or not dest.cluster_name or dest.endpoint:
            return dest
        found = await asyncio.to_thread(self._clusters, dest.cluster_name)
        if found is None or found[0] != "OPENSEARCH":
            problems.append(LogLine(deployment_id, "DEPLOY", dest.component, self._clock.now(),
                                    f"log forwarding: {dest.label} names cluster {dest.cluster_name!r}, which is not "
                                    f"a registered OpenSearch cluster (shoal cluster add {dest.cluster_name} --engine "
                                    f"OPENSEARCH --url https://user:password@host:port); its lines are not forwarded"))
            return None
        url = urlsplit(found[1])
        netloc = url.hostname or ""
        if url.port:
            netloc += f":{url.port}"
        return replace(dest, endpoint=url._replace(netloc=netloc).geturl(),
                       user=dest.user or url.username or "doadmin", password=url.password or "")

    async def _report(self, dropped: list[Dropped]) -> None:
        lines = []
        for item in dropped:
            dep = await asyncio.to_thread(self._store.deployment_by_id, item.deployment_id)
            if dep is None:
                continue
            stage = "DEPLOY" if dep.phase in (Phase.PENDING_BUILD, Phase.BUILDING, Phase.PENDING_DEPLOY,
                                              Phase.DEPLOYING) else "RUN"
            text = f"log forwarding: {item.count} line(s) for {item.destination.label} were dropped: {item.reason}"
            log.warning("%s (deployment %s)", text, item.deployment_id)
            lines.append(LogLine(item.deployment_id, stage, item.destination.component, self._clock.now(), text))
        if lines:
            await asyncio.to_thread(self._store.append_logs, lines)
