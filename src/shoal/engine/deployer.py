"""The deployer: a durable, level-based pipeline per deployment.

``reconcile`` re-reads the deployment every time round, finds the first leaf step of its progress
tree that has not succeeded, performs it, and records the result. The stored tree *is* the
pipeline's position, so a crash at any line is survivable: on the next start every unfinished
deployment is reconciled again and the interrupted step (left ``RUNNING``) is simply repeated —
runtime steps are idempotent. A newer deployment or a cancel changes the stored record; the
running pipeline notices on its next write (optimistic versions) and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from shoal.core.clock import Clock, rfc3339
from shoal.domain import progress as steps
from shoal.domain import jobs
from shoal.domain.deployments import Deployment, Phase, StepFailed
from shoal.domain.plan import Component, archived, components, stopped
from shoal.domain.ports import DeploymentStore, DeployTarget, JobStore, LogSink, Runtime
from shoal.engine.logbuffer import LogBuffer

log = logging.getLogger("shoal.engine")
Path = tuple[str, ...]


class _Stale(Exception):
    """The stored deployment changed under the pipeline (canceled, superseded): re-read it."""


def next_leaf(tree: list[steps.Step], prefix: Path = ()) -> Path | None:
    for step in tree:
        path = (*prefix, step["name"])
        if step.get("steps"):
            found = next_leaf(step["steps"], path)
            if found:
                return found
        elif step["status"] != steps.SUCCESS:
            return path
    return None


def _duration(start: str | None, end: str | None) -> str | None:
    if not start or not end:
        return None
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{max(seconds, 0):.3f}s"


class Deployer:
    def __init__(self, store: DeploymentStore, runtime: Runtime, clock: Clock, logs: LogBuffer,
                 job_store: JobStore, url_of: Callable[[str], str] = lambda host: f"http://{host}",
                 secrets: Callable[[Deployment], list[str]] = lambda dep: []) -> None:
        self._store = store
        self._url_of = url_of
        self._secrets = secrets
        self._jobs = job_store
        self._runtime = runtime
        self._clock = clock
        self._logs = logs
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._hosts: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._stop: asyncio.Event | None = None
        self.ready = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive deployments until ``stop``; resumes every unfinished deployment first."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._logs.run(self._stop))
            for dep in await asyncio.to_thread(self._store.active_deployments):
                # Tracked like a pipeline, so a new deployment of the same app waits for it.
                restoring = group.create_task(self._restore(dep))
                self._tasks[dep.app_id] = (dep.id, restoring)
                restoring.add_done_callback(functools.partial(self._forget, dep.app_id))
            for dep in await asyncio.to_thread(self._store.unfinished_deployments):
                log.info("resuming deployment %s of app %s (phase %s)", dep.id, dep.app_id, dep.phase)
                self._start(dep.app_id, dep.id)
            self.ready.set()
            await self._stop.wait()
            for _, task in self._tasks.values():
                task.cancel()
        self._group = None
        await self._runtime.close()  # shoal stopping stops every process it started

    async def _restore(self, dep: Deployment) -> None:
        """shoal restarted: bring the app's active deployment back up from its builds."""
        try:
            self._logs.mask(dep.id, self._secrets(dep))
            target = await self._target(dep)
            await self._runtime.restore(target, self._logs.sink(dep.id))
        except StepFailed as failure:
            self._logs.sink(dep.id)("RUN", "deploy", f"could not restart after shoal restarted: {failure.message}")
        except Exception:
            log.exception("could not restore the active deployment %s of app %s", dep.id, dep.app_id)

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)

    def submit(self, app_id: str, deployment_id: str) -> None:
        """Start (or take over) the app's pipeline with this deployment; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._start, app_id, deployment_id)

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
        if self._group is not None:
            self._group.create_task(self._remove_quietly(app_id))

    async def _remove_quietly(self, app_id: str) -> None:
        try:
            await self._runtime.remove_app(app_id)
        except Exception:  # the app is gone either way; a runtime hiccup must not stop the engine
            log.exception("could not remove the runtime resources of app %s", app_id)

    def _cancel(self, app_id: str, deployment_id: str) -> None:
        current = self._tasks.get(app_id)
        if current and current[0] == deployment_id:
            current[1].cancel()

    def _start(self, app_id: str, deployment_id: str) -> None:
        if self._group is None:
            return
        previous = self._tasks.get(app_id)
        if previous and previous[0] == deployment_id and not previous[1].done():
            return
        if previous and not previous[1].done():
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
            await self._logs.flush_async()

    async def _abandoned(self, app_id: str, deployment_id: str) -> None:
        dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
        # Superseded or canceled: release what it started. Still open: shoal is stopping, and the
        # next start resumes it, so leave it as it is.
        if dep is not None and dep.terminal and dep.phase != Phase.ACTIVE:
            await self._runtime.discard(app_id, deployment_id)

    # -- the pipeline ----------------------------------------------------------------------------

    async def reconcile(self, deployment_id: str) -> None:
        while True:
            dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
            if dep is None or dep.terminal:
                return
            self._logs.mask(dep.id, self._secrets(dep))
            path = next_leaf(dep.progress)
            if path is None:
                with contextlib.suppress(_Stale):
                    await self._finish(dep)
                continue
            running = self._enter(dep, path)
            steps.mark(running.progress, path, steps.RUNNING, self._now())
            saved = await self._save(running)
            if saved is None:
                continue
            try:
                done = await self._act(saved, await self._target(saved), path, self._logs.sink(saved.id))
            except _Stale:
                continue
            except StepFailed as failure:
                await self._fail(saved.id, path, failure)
                return
            steps.mark(done.progress, path, steps.SUCCESS, self._now())
            await self._save(done)

    async def _save(self, dep: Deployment) -> Deployment | None:
        """Store ``dep``, after the log lines written so far: a follower that sees a stage end has
        already been able to read all of that stage's lines."""
        await self._logs.flush_async()
        return await asyncio.to_thread(self._store.save_deployment, dep)

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    def _enter(self, dep: Deployment, path: Path) -> Deployment:
        """The deployment with its phase moved to where ``path`` lives, and a private copy of its tree."""
        now = self._clock.now()
        dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
        if path[0] == "build" and dep.phase == Phase.PENDING_BUILD:
            dep = dep.moved_to(Phase.BUILDING, now)
            dep.timing.setdefault("_build_started", now.isoformat())
        elif path[0] == "deploy" and dep.phase in (Phase.PENDING_BUILD, Phase.BUILDING):
            dep = dep.moved_to(Phase.PENDING_DEPLOY, now).moved_to(Phase.DEPLOYING, now)
            dep.timing.setdefault("_build_ended", now.isoformat())
            dep.timing.setdefault("_deploy_started", now.isoformat())
        return dep

    async def _target(self, dep: Deployment) -> DeployTarget:
        # An app's default host is fixed when it is created, so it is read once per app.
        host = self._hosts.get(dep.app_id)
        if host is None:
            host = await asyncio.to_thread(self._store.ingress_host, dep.app_id) or ""
            self._hosts[dep.app_id] = host
        domains = tuple(name for d in dep.spec.get("domains") or [] if d.get("domain")
                        for name in ((str(d["domain"]), f"*.{d['domain']}") if d.get("wildcard") else (str(d["domain"]),)))
        primary = next((str(d["domain"]) for d in dep.spec.get("domains") or [] if d.get("type") == "PRIMARY"), None)
        return DeployTarget(app_id=dep.app_id, app_name=str(dep.spec.get("name")), deployment_id=dep.id,
                            spec=dep.spec, force_build=dep.force_build,
                            previous_deployment_id=dep.previous_deployment_id,
                            hosts=((host,) if host else ()) + domains, account_id=dep.account_id,
                            app_url=self._url_of(primary or host or ""),
                            commits={c["name"]: c["source_commit_hash"] for c in dep.components
                                     if c.get("source_commit_hash")})

    async def _act(self, dep: Deployment, target: DeployTarget, path: Path, sink: LogSink) -> Deployment:
        parts = {c.name: c for c in components(dep.spec)}
        stage, group = path[0], path[1]
        if stage == "build" and group == "components":
            return await self._build(dep, target, parts[path[2]], sink)
        if stage == "build":
            sink("BUILD", "build", "Initializing build")
            if archived(dep.spec):
                sink("BUILD", "build", "The app is archived (maintenance.archive): nothing to build")
            return dep
        if group == "initialize":
            sink("DEPLOY", "deploy", f"Deploying {target.app_name} (deployment {dep.id})")
            if archived(dep.spec):
                names = ", ".join(c.name for c in stopped(dep.spec)) or "none"
                sink("DEPLOY", "deploy", f"The app is archived (maintenance.archive): stopping its components "
                                         f"({names}) and serving the offline page; dev databases keep their data. "
                                         "Set maintenance.archive to false to start them again.")
        elif group == "databases":
            await self._runtime.provision_database(target, parts[path[2]], sink)
        elif group == "pre_deploy":
            await self._run_job(target, parts[path[2]], group, sink, dep.cause_details)
        elif group == "components" and path[3] == "deploy":
            await self._runtime.start(target, parts[path[2]], sink)
        elif group == "components" and path[3] == "stop":
            # The offline page goes live first, so nobody is sent to a component while it stops.
            dep = await self._go_live(dep, target, sink)
            await self._runtime.stop(target, parts[path[2]], sink)
            sink("DEPLOY", path[2], f"{path[2]} is stopped: the app is archived")
        elif group == "components":
            await self._runtime.wait_healthy(target, parts[path[2]], sink)
        elif group == "post_deploy":
            dep = await self._go_live(dep, target, sink)
            await self._run_job(target, parts[path[2]], group, sink, dep.cause_details)
        elif group == "failed_deploy":
            pass  # only run when a deployment fails; skipped (SUCCESS) on a healthy one
        elif group == "finalize":
            dep = await self._go_live(dep, target, sink)
            if dep.previous_deployment_id:
                await self._runtime.retire(dep.app_id, dep.previous_deployment_id)
        return dep

    async def _build(self, dep: Deployment, target: DeployTarget, part: Component, sink: LogSink) -> Deployment:
        if dep.restart_components is not None:
            sink("BUILD", part.name, "PreviousBuildReused: restarting with the build of the active deployment")
            return dep
        commit = await self._runtime.fetch(target, part, sink)
        await self._runtime.build(target, part, commit, sink)
        for entry in dep.components:
            if entry["name"] == part.name:
                entry["source_commit_hash"] = commit
        return dep

    async def _run_job(self, target: DeployTarget, part: Component, group: str, sink: LogSink,
                       cause_details: dict[str, object] | None = None) -> None:
        """Run a deploy-time job, recorded as a job invocation (one per deployment, step and job);
        its trigger names the user whose action made the deployment (issue 13 item 7)."""
        started = self._clock.now()
        invocation = jobs.JobInvocation(
            id=jobs.deploy_invocation_id(target.deployment_id, group, part.name), app_id=target.app_id,
            deployment_id=target.deployment_id, job_name=part.name, phase=jobs.RUNNING,
            trigger=jobs.deployment_trigger(cause_details or {}), created_at=started, started_at=started)
        await asyncio.to_thread(self._jobs.save_invocation, invocation)
        phase = jobs.FAILED
        try:
            await self._runtime.run_job(target, part, sink)
            phase = jobs.SUCCEEDED
        finally:
            done = replace(invocation, phase=phase, completed_at=self._clock.now())
            await asyncio.shield(asyncio.to_thread(self._jobs.save_invocation, done))

    async def _go_live(self, dep: Deployment, target: DeployTarget, sink: LogSink) -> Deployment:
        if await asyncio.to_thread(self._store.active_deployment_id, dep.app_id) == dep.id:
            return dep
        await self._runtime.switch_traffic(target, sink)
        live = await asyncio.to_thread(self._store.go_live, dep, self._clock.now())
        if live is None:
            raise _Stale
        sink("DEPLOY", "deploy", "Traffic switched to the new deployment")
        return live

    async def _finish(self, dep: Deployment) -> None:
        now = self._clock.now()
        target = await self._target(dep)
        dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
        dep = await self._go_live(dep, target, self._logs.sink(dep.id))
        dep.timing.setdefault("_deploy_ended", now.isoformat())
        dep = replace(dep.moved_to(Phase.ACTIVE, now), timing=self._timing(dep))
        await self._save(dep)

    def _timing(self, dep: Deployment) -> dict[str, object]:
        marks = dep.timing
        created = dep.created_at.isoformat()
        timing: dict[str, object] = {k: v for k, v in marks.items() if k.startswith("_")}
        for key, value in (("pending", _duration(created, marks.get("_build_started"))),
                           ("build_total", _duration(marks.get("_build_started"), marks.get("_build_ended"))),
                           ("build_billable", _duration(marks.get("_build_started"), marks.get("_build_ended"))),
                           ("deploying", _duration(marks.get("_deploy_started"), marks.get("_deploy_ended")))):
            if value:
                timing[key] = value
        return timing

    async def _fail(self, deployment_id: str, path: Path | None, failure: StepFailed) -> None:
        for _ in range(5):  # re-read and retry if something else wrote in between
            dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
            if dep is None or dep.terminal:
                return
            dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
            sink = self._logs.sink(dep.id)
            path = path or next_leaf(dep.progress)  # an unexpected error: blame the step it happened in
            if path is not None:
                steps.mark(dep.progress, path, steps.ERROR, self._now(), failure.reason())
            sink("DEPLOY" if path and path[0] == "deploy" else "BUILD", path[2] if path and len(path) > 2 else "deploy",
                 f"ERROR {failure.code}: {failure.message}")
            if path and path[0] == "deploy":
                await self._run_failed_deploy_jobs(dep, sink)
            if await asyncio.to_thread(self._store.active_deployment_id, dep.app_id) != dep.id:
                await self._runtime.discard(dep.app_id, dep.id)
            failed = replace(dep.moved_to(Phase.ERROR, self._clock.now()), ended_reason=failure.reason())
            if await self._save(failed) is not None:
                return

    async def _run_failed_deploy_jobs(self, dep: Deployment, sink: LogSink) -> None:
        if not steps.has(dep.progress, ("deploy", "failed_deploy")):
            return
        target = await self._target(dep)
        parts = {c.name: c for c in components(dep.spec)}
        for job in steps.find(dep.progress, ("deploy", "failed_deploy"))["steps"]:
            path = ("deploy", "failed_deploy", job["name"])
            steps.mark(dep.progress, path, steps.RUNNING, self._now())
            try:
                await self._run_job(target, parts[job["name"]], "failed_deploy", sink, dep.cause_details)
                steps.mark(dep.progress, path, steps.SUCCESS, self._now())
            except StepFailed as failure:
                steps.mark(dep.progress, path, steps.ERROR, self._now(), failure.reason())
