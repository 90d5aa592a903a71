"""The deployer: the pipelines of the apps this server owns.

Exactly one server owns an app (``domain.ports.Ownership``: an advisory lock on PostgreSQL, every
app on SQLite). The owner drives the app's deployments (``engine.pipeline``), keeps its active
deployment up and runs its scheduled jobs. On start, and every second after, a server takes over
the apps with work that nobody owns — all of them on its first look when it is the only server —
restoring the active deployment and resuming the unfinished one from its step. A deployment
submitted to a server that does not own the app reaches the owner through the change feed
(``heard``); an app nobody owns is taken over by the server it was submitted to.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from shoal.core.clock import Clock
from shoal.domain.changes import APP, EVERYTHING, Change
from shoal.domain.deployments import Deployment, Phase, StepFailed
from shoal.domain.ports import DeploymentStore, JobStore, Ownership, Runtime
from shoal.engine.logbuffer import LogBuffer
from shoal.engine.pipeline import JobFailed, Pipeline

log = logging.getLogger("shoal.engine")

CUSTODY_SECONDS = 1.0  # how often a server looks for apps whose owner died


class Deployer(Pipeline):
    def __init__(self, store: DeploymentStore, runtime: Runtime, clock: Clock, logs: LogBuffer,
                 job_store: JobStore, ownership: Ownership,
                 url_of: Callable[[str], str] = lambda host: f"http://{host}",
                 secrets: Callable[[Deployment], list[str]] = lambda dep: [],
                 job_failed: JobFailed | None = None) -> None:
        super().__init__(store, runtime, clock, logs, job_store, url_of, secrets, job_failed)
        self._owners = ownership
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._stop: asyncio.Event | None = None
        self.ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive deployments until ``stop``. First every app nobody holds is taken over (on one
        server: every app): its active deployment restored, its unfinished one resumed; then the
        custody loop keeps taking over apps whose owner died."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._logs.run(self._stop))
            scheduler = group.create_task(self._scheduler.run())
            await self._look_for_apps()
            custody = group.create_task(self._keep_custody())
            self.ready.set()
            await self._stop.wait()
            custody.cancel()
            scheduler.cancel()
            for _, task in self._tasks.values():
                task.cancel()
        self._group = None
        await self._runtime.close()  # shoal stopping stops every process it started

    # -- custody: which apps this server drives --------------------------------------------------

    async def _keep_custody(self) -> None:
        while True:
            await asyncio.sleep(CUSTODY_SECONDS)
            try:
                await self._look_for_apps()
            except Exception:  # the database may be away for a while; look again next time
                log.exception("could not look for apps without an owner")

    async def _look_for_apps(self) -> None:
        claims = await asyncio.to_thread(self._owners.scan)
        for app_id in claims.lost:
            await self._let_go(app_id)
        for app_id in claims.gained:
            await self._adopt(app_id)

    async def _adopt(self, app_id: str) -> None:
        """The app is this server's now: bring its active deployment up, then resume its open one."""
        active = await asyncio.to_thread(self._store.active_deployment, app_id)
        pending = await asyncio.to_thread(self._store.newest_unfinished, app_id)
        current = self._tasks.get(app_id)
        if self._group is None or (current is not None and not current[1].done()):
            return  # already driven here (a submission got to it first)
        if active is not None:
            # Tracked like a pipeline, so a new deployment of the same app waits for it.
            restoring = self._group.create_task(self._restore(active))
            self._tasks[app_id] = (active.id, restoring)
            restoring.add_done_callback(functools.partial(self._forget, app_id))
        if pending is not None:
            log.info("resuming deployment %s of app %s (phase %s)", pending.id, app_id, pending.phase)
            self._start(app_id, pending.id, supersede=False)

    async def _let_go(self, app_id: str) -> None:
        """Another server may hold the app now: stop driving it and stop what runs for it here."""
        log.warning("no longer the owner of app %s: stopping what runs for it here", app_id)
        current = self._tasks.pop(app_id, None)
        if current:
            current[1].cancel()
        self._scheduler.replace_app(app_id, [])
        self._live.pop(app_id, None)
        try:
            await self._runtime.release(app_id)
        except Exception:
            log.exception("could not stop what runs for app %s", app_id)

    async def _restore(self, dep: Deployment) -> None:
        """shoal restarted, or took the app over: bring its active deployment back up from its builds."""
        try:
            self._logs.mask(dep.id, self._secrets(dep))
            plan = await self._plan(dep)
            await self._runtime.restore(plan, self._logs.sink(dep.id))
            self._schedule(plan)
        except StepFailed as failure:
            self._logs.sink(dep.id)("RUN", "deploy", f"could not restart after shoal restarted: {failure.message}")
        except Exception:
            log.exception("could not restore the active deployment %s of app %s", dep.id, dep.app_id)

    def heard(self, change: Change) -> None:
        """A committed write (any thread): another server's write to an app this one drives may be a
        deployment submitted or canceled there, or the app deleted."""
        if change.local or self._loop is None or change.kind not in (APP, EVERYTHING):
            return
        if change.kind == APP and not self._owners.owns(change.key):
            return
        self._loop.call_soon_threadsafe(self._review_soon, change)

    def _review_soon(self, change: Change) -> None:
        if self._group is None:
            return
        apps = list(self._tasks) + list(self._live) if change.kind == EVERYTHING else [change.key]
        for app_id in dict.fromkeys(apps):
            if self._owners.owns(app_id):
                self._group.create_task(self._review(app_id))

    async def _review(self, app_id: str) -> None:
        """Make what this server does for the app match what is stored: its newest open deployment
        driven, a canceled one stopped, a deleted app removed."""
        if await asyncio.to_thread(self._store.ingress_host, app_id) is None:
            self._remove(app_id)
            return
        pending = await asyncio.to_thread(self._store.newest_unfinished, app_id)
        current = self._tasks.get(app_id)
        if pending is not None:
            self._start(app_id, pending.id)
        elif current is not None and current[0] != self._live.get(app_id):
            dep = await asyncio.to_thread(self._store.deployment_by_id, current[0])
            if dep is None or (dep.terminal and dep.phase != Phase.ACTIVE):  # canceled elsewhere
                self._cancel(app_id, current[0])

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)

    def submit(self, app_id: str, deployment_id: str) -> None:
        """Start (or take over) the app's pipeline with this deployment; callable from any thread.
        On a server that does not own the app, the owner hears of it through the change feed; an
        app nobody owns (a new one, or its owner died) is taken over here."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._submitted, app_id, deployment_id)

    def _submitted(self, app_id: str, deployment_id: str) -> None:
        if self._owners.owns(app_id):
            self._start(app_id, deployment_id)
        elif self._group is not None:
            self._group.create_task(self._claim(app_id))

    async def _claim(self, app_id: str) -> None:
        if await asyncio.to_thread(self._owners.claim, app_id):
            await self._adopt(app_id)

    def cancel(self, app_id: str, deployment_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._cancel, app_id, deployment_id)

    def remove(self, app_id: str) -> None:
        """The app was deleted: stop its pipeline and everything the runtime runs for it."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._remove, app_id)

    def _remove(self, app_id: str) -> None:
        current = self._tasks.pop(app_id, None)
        if current:
            current[1].cancel()
        self._scheduler.replace_app(app_id, [])
        self._live.pop(app_id, None)
        self._hosts.pop(app_id, None)
        if self._group is not None:
            self._group.create_task(self._remove_quietly(app_id))

    async def _remove_quietly(self, app_id: str) -> None:
        """The owner removes what runs (and its databases); a server that does not own the app
        leaves that to the owner, which hears of the deletion through the change feed."""
        if not self._owners.owns(app_id) and not await asyncio.to_thread(self._owners.claim, app_id):
            return
        try:
            await self._runtime.remove_app(app_id)
        except Exception:  # the app is gone either way; a runtime hiccup must not stop the engine
            log.exception("could not remove the runtime resources of app %s", app_id)
        finally:
            await asyncio.to_thread(self._owners.release, app_id)

    def _cancel(self, app_id: str, deployment_id: str) -> None:
        current = self._tasks.get(app_id)
        if current and current[0] == deployment_id:
            current[1].cancel()

    def _start(self, app_id: str, deployment_id: str, supersede: bool = True) -> None:
        """Drive ``deployment_id``: the app's previous pipeline is cancelled first (``supersede``)
        or, when it is the restore of the active deployment, waited for."""
        if self._group is None:
            return
        previous = self._tasks.get(app_id)
        if previous and previous[0] == deployment_id and not previous[1].done():
            return
        if previous and not previous[1].done() and supersede:
            previous[1].cancel()
        task = self._group.create_task(self._drive(app_id, deployment_id, previous[1] if previous else None))
        self._tasks[app_id] = (deployment_id, task)
        task.add_done_callback(lambda t: self._forget(app_id, t))

    def _forget(self, app_id: str, task: asyncio.Task[None]) -> None:
        current = self._tasks.get(app_id)
        if current and current[1] is task:
            del self._tasks[app_id]

    async def _drive(self, app_id: str, deployment_id: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # one pipeline per app: the old one winds down first
        try:
            await self.reconcile(deployment_id)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandoned(app_id, deployment_id))
            raise
        except Exception:  # a bug must end the deployment, not the engine
            log.exception("deployment %s failed unexpectedly", deployment_id)
            await self._fail(deployment_id, None, StepFailed("InternalError", "shoal hit an internal error"))
        finally:
            self._plans.pop(deployment_id, None)
            await self._logs.flush_async()

    async def _abandoned(self, app_id: str, deployment_id: str) -> None:
        dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
        # Superseded or canceled: release what it started. Still open: shoal is stopping, and the
        # next start resumes it, so leave it as it is.
        if dep is not None and dep.terminal and dep.phase != Phase.ACTIVE:
            await self._runtime.discard(app_id, deployment_id)
