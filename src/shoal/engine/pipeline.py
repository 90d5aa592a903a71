"""One deployment's pipeline: level-based, durable, resumable at any step.

``reconcile`` re-reads the deployment every time round, finds the first leaf step of its progress
tree that has not succeeded, performs the typed action that leaf stands for, and records the
result. The stored tree *is* the pipeline's position, so a crash at any line is survivable: the
next owner of the app reconciles it again and the interrupted step (left ``RUNNING``) is simply
repeated — runtime steps are idempotent. A newer deployment or a cancel changes the stored record;
the running pipeline notices on its next write (optimistic versions) and stops.

Runtimes see a deployment only as its typed plan (``shoal.domain.plan``), made once per deployment
and completed round by round with the commits and artefacts recorded on the deployment. Which
pipelines run, and on which server, is the deployer's business (``engine.deployer``).
"""


from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shoal.core.clock import Clock, rfc3339
from shoal.domain import jobs
from shoal.domain import progress as steps
from shoal.domain.deployments import Deployment, Phase, StepFailed
from shoal.domain.plan import AppPlan, Artifact, RunUnit, make_plan
from shoal.domain.ports import DeploymentStore, JobStore, LogSink, PieceSink, Runtime
from shoal.domain.progress import (Build, Finalize, InitializeBuild, InitializeDeploy, Provision, RunJob, Start,
                                   StepKey, Stop, Wait, action_at, next_leaf)
from shoal.engine.logbuffer import LogBuffer
from shoal.engine.schedules import JobScheduler, Scheduled

log = logging.getLogger("shoal.engine")
JobFailed = Callable[[AppPlan, str, str, str], Awaitable[None]]  # (plan, job, invocation id, reason)
CANCEL_POLL_SECONDS = 1.0  # how soon a job canceled through the API is stopped


class Stale(Exception):
    """The stored deployment changed under the pipeline (canceled, superseded): re-read it."""


def _duration(start: str | None, end: str | None) -> str | None:
    if not start or not end:
        return None
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{max(seconds, 0):.3f}s"


def _progress_of(dep: Deployment) -> tuple[dict[str, str], dict[str, Artifact]]:
    """What the deployment has recorded so far: each component's commit and build artefact."""
    commits = {c["name"]: c["source_commit_hash"] for c in dep.components if c.get("source_commit_hash")}
    artifacts = {c["name"]: found for c in dep.components if (found := Artifact.from_record(c.get("artifact")))}
    return commits, artifacts


class _OnRunStage:
    """A scheduled run's lines are RUN logs (of the job invocation), whatever the runtime calls them."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def __call__(self, stage: str, component: str, line: str) -> None:
        self._sink("RUN" if stage in ("DEPLOY", "RUN") else stage, component, line)

    def piece(self, stage: str, component: str, line: str) -> None:
        stage = "RUN" if stage in ("DEPLOY", "RUN") else stage
        if isinstance(self._sink, PieceSink):
            self._sink.piece(stage, component, line)
        else:
            self._sink(stage, component, line)


def _on_run_stage(sink: LogSink) -> LogSink:
    return _OnRunStage(sink)


class Pipeline:
    """The steps of a deployment, its plan, its jobs, and the schedules of the app's live deployment."""

    def __init__(self, store: DeploymentStore, runtime: Runtime, clock: Clock, logs: LogBuffer,
                 job_store: JobStore, url_of: Callable[[str], str] = lambda host: f"http://{host}",
                 secrets: Callable[[Deployment], list[str]] = lambda dep: [],
                 job_failed: JobFailed | None = None) -> None:
        self._store = store
        self._job_failed = job_failed
        self._url_of = url_of
        self._secrets = secrets
        self._jobs = job_store
        self._runtime = runtime
        self._clock = clock
        self._logs = logs
        self._hosts: dict[str, str] = {}
        self._plans: dict[str, AppPlan] = {}  # deployment → its plan as made from the spec
        self._live: dict[str, str] = {}  # app → the deployment whose schedules run
        self._scheduler = JobScheduler(self._run_scheduled, clock)

    @property
    def scheduler(self) -> JobScheduler:
        return self._scheduler

    # -- the pipeline ----------------------------------------------------------------------------

    async def reconcile(self, deployment_id: str) -> None:
        while True:
            dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
            if dep is None or dep.terminal:
                return
            self._logs.mask(dep.id, self._secrets(dep))
            key = next_leaf(dep.progress)
            if key is None:
                with contextlib.suppress(Stale):
                    await self._finish(dep)
                continue
            running = self._enter(dep, key)
            steps.mark(running.progress, key, steps.RUNNING, self._now())
            saved = await self._save(running)
            if saved is None:
                continue
            try:
                plan = await self._plan(saved)
                done = await self._act(saved, plan, key, self._logs.sink(saved.id))
            except Stale:
                continue
            except StepFailed as failure:
                await self._fail(saved.id, key, failure)
                return
            steps.mark(done.progress, key, steps.SUCCESS, self._now())
            await self._save(done)

    async def _save(self, dep: Deployment) -> Deployment | None:
        """Store ``dep``, after the log lines written so far: a follower that sees a stage end has
        already been able to read all of that stage's lines."""
        await self._logs.flush_async()
        return await asyncio.to_thread(self._store.save_deployment, dep)

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    def _enter(self, dep: Deployment, key: StepKey) -> Deployment:
        """The deployment with its phase moved to where ``key`` lives, and a private copy of its tree."""
        now = self._clock.now()
        dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
        if key[0] == "build" and dep.phase == Phase.PENDING_BUILD:
            dep = dep.moved_to(Phase.BUILDING, now)
            dep.timing.setdefault("_build_started", now.isoformat())
        elif key[0] == "deploy" and dep.phase in (Phase.PENDING_BUILD, Phase.BUILDING):
            dep = dep.moved_to(Phase.PENDING_DEPLOY, now).moved_to(Phase.DEPLOYING, now)
            dep.timing.setdefault("_build_ended", now.isoformat())
            dep.timing.setdefault("_deploy_started", now.isoformat())
        return dep

    async def _plan(self, dep: Deployment) -> AppPlan:
        """The deployment's plan, with the commits and artefacts it has recorded so far."""
        base = self._plans.get(dep.id)
        if base is None:
            # An app's default host is fixed when it is created, so it is read once per app.
            host = self._hosts.get(dep.app_id)
            if host is None:
                host = await asyncio.to_thread(self._store.ingress_host, dep.app_id) or ""
                self._hosts[dep.app_id] = host
            draft = make_plan(dep.spec, app_id=dep.app_id, deployment_id=dep.id, account_id=dep.account_id,
                              default_host=host, force_build=dep.force_build,
                              previous_deployment_id=dep.previous_deployment_id)
            base = replace(draft, app_url=self._url_of(draft.primary_domain or host or ""))
            self._plans[dep.id] = base
        commits, artifacts = _progress_of(dep)
        return base.with_progress(commits, artifacts)

    async def _act(self, dep: Deployment, plan: AppPlan, key: StepKey, sink: LogSink) -> Deployment:
        match action_at(key, plan):
            case InitializeBuild():
                sink("BUILD", "build", "Initializing build")
                if plan.archived:
                    sink("BUILD", "build", "The app is archived (maintenance.archive): nothing to build")
            case Build(unit):
                return await self._build(dep, plan, unit, sink)
            case InitializeDeploy():
                sink("DEPLOY", "deploy", f"Deploying {plan.app_name} (deployment {dep.id})")
                if plan.archived:
                    names = ", ".join(u.name for u in plan.stopped) or "none"
                    sink("DEPLOY", "deploy", f"The app is archived (maintenance.archive): stopping its components "
                                             f"({names}) and serving the offline page; dev databases keep their "
                                             "data. Set maintenance.archive to false to start them again.")
            case Provision(unit):
                await self._runtime.provision_database(plan, unit, sink)
            case RunJob(unit, "failed_deploy"):
                pass  # only run when a deployment fails; skipped (SUCCESS) on a healthy one
            case RunJob(unit, "post_deploy"):
                dep = await self._go_live(dep, plan, sink)
                await self._run_job(plan, unit, "post_deploy", sink, started_by=dep.cause_details)
            case RunJob(unit, group):
                await self._run_job(plan, unit, group, sink, started_by=dep.cause_details)
            case Start(unit):
                await self._runtime.start(plan, unit, sink)
            case Wait(unit):
                await self._runtime.wait_healthy(plan, unit, sink)
            case Stop(unit):
                # The offline page goes live first, so nobody is sent to a component while it stops.
                dep = await self._go_live(dep, plan, sink)
                await self._runtime.stop(plan, unit, sink)
                sink("DEPLOY", unit.name, f"{unit.name} is stopped: the app is archived")
            case Finalize():
                dep = await self._go_live(dep, plan, sink)
                if dep.previous_deployment_id:
                    await self._runtime.retire(dep.app_id, dep.previous_deployment_id)
        return dep

    async def _build(self, dep: Deployment, plan: AppPlan, unit: RunUnit, sink: LogSink) -> Deployment:
        if dep.restart_components is not None:
            sink("BUILD", unit.name, "PreviousBuildReused: restarting with the build of the active deployment")
            return dep
        commit = await self._runtime.fetch(plan, unit, sink)
        artifact = await self._runtime.build(plan, replace(unit, commit=commit), sink)
        for entry in dep.components:
            if entry["name"] == unit.name:
                entry["source_commit_hash"] = commit
                entry["artifact"] = artifact.as_record()
        return dep

    async def _run_job(self, plan: AppPlan, unit: RunUnit, group: str, sink: LogSink,
                       trigger: Mapping[str, object] | None = None,
                       started_by: dict[str, Any] | None = None) -> None:
        """Run a job, recorded as a job invocation: one per deployment, step and job for deploy-time
        jobs (so a step repeated after a crash records one), a new one for every scheduled run.
        A deploy-time job's trigger names the user whose action made the deployment (``started_by``,
        its cause_details), as godo's MANUAL trigger does (issue 13 item 7)."""
        started = self._clock.now()
        ident = jobs.deploy_invocation_id(plan.deployment_id, group, unit.name) if trigger is None \
            else jobs.new_invocation_id()
        invocation = jobs.JobInvocation(
            id=ident, app_id=plan.app_id, deployment_id=plan.deployment_id, job_name=unit.name,
            phase=jobs.RUNNING, trigger=dict(trigger or jobs.deployment_trigger(started_by or {})), created_at=started,
            started_at=started)
        await asyncio.to_thread(self._jobs.save_invocation, invocation)
        phase, canceled = jobs.FAILED, False
        try:
            canceled = await self._unless_canceled(self._runtime.run_job(plan, unit, sink), plan.app_id, ident)
            phase = jobs.CANCELED if canceled else jobs.SUCCEEDED
        except StepFailed as exc:  # the job failed (not shoal stopping): its JOB_INVOCATION_FAILED alerts fire
            await asyncio.shield(self._announce_failure(plan, unit.name, ident, f"{exc.code}: {exc.message}"))
            raise
        finally:
            if phase != jobs.CANCELED:  # a canceled one was recorded so by the cancel itself
                done = replace(invocation, phase=phase, completed_at=self._clock.now())
                await asyncio.shield(asyncio.to_thread(self._jobs.save_invocation, done))
        if canceled:
            sink("DEPLOY", unit.name, f"job {unit.name} was canceled and stopped")
            if trigger is None:  # a deploy-time job: the deployment cannot go on as if it had run
                raise StepFailed("ContainerExitNonZero", f"job {unit.name} was canceled (job invocation {ident})")

    async def _announce_failure(self, plan: AppPlan, job: str, invocation_id: str, reason: str) -> None:
        if self._job_failed is None:
            return
        try:
            await self._job_failed(plan, job, invocation_id, reason)
        except Exception:  # an alert that cannot be recorded must not change what the job did
            log.exception("could not record the failure of job %s of app %s", job, plan.app_id)

    async def _unless_canceled(self, job: Coroutine[Any, Any, None], app_id: str, invocation_id: str) -> bool:
        """Run ``job``, looking at its invocation now and then: canceled through the API (on this server or
        another one sharing the database), the job is stopped and the answer is True."""
        task = asyncio.ensure_future(job)
        try:
            while not (await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS))[0]:
                found = await asyncio.to_thread(self._jobs.get_invocation, app_id, invocation_id)
                if found is not None and found.phase == jobs.CANCELED:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StepFailed):
                        await task
                    return True
            task.result()  # the job's own failure, if it failed
            return False
        finally:
            if not task.done():  # shoal is stopping: the job stops with it
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    # -- scheduled jobs --------------------------------------------------------------------------

    def _schedule(self, plan: AppPlan) -> None:
        """``plan`` is live: its SCHEDULED jobs (none while archived) are the app's schedules now."""
        replaced = self._live.get(plan.app_id)
        if replaced and replaced != plan.deployment_id:
            self._plans.pop(replaced, None)
        self._live[plan.app_id] = plan.deployment_id
        self._scheduler.replace_app(plan.app_id, [
            Scheduled(plan.app_id, plan.deployment_id, u.name, u.schedule.cron, u.schedule.time_zone)
            for u in plan.running if u.scheduled and u.schedule is not None])

    async def _run_scheduled(self, due: Scheduled) -> None:
        dep = await asyncio.to_thread(self._store.deployment_by_id, due.deployment_id)
        if dep is None or self._live.get(due.app_id) != due.deployment_id:
            return
        plan = await self._plan(dep)
        sink = _on_run_stage(self._logs.sink(dep.id))
        trigger = {"type": "SCHEDULED", "scheduled": {"schedule": {"cron": due.cron, "time_zone": due.time_zone}}}
        try:
            await self._run_job(plan, plan.unit(due.job), "scheduled", sink, trigger)
        except StepFailed as failure:
            sink("RUN", due.job, failure.message)

    # -- going live, finishing, failing ----------------------------------------------------------

    async def _go_live(self, dep: Deployment, plan: AppPlan, sink: LogSink) -> Deployment:
        if await asyncio.to_thread(self._store.active_deployment_id, dep.app_id) == dep.id:
            return dep
        await self._runtime.switch_traffic(plan, sink)
        live = await asyncio.to_thread(self._store.go_live, dep, self._clock.now())
        if live is None:
            raise Stale
        self._schedule(plan)
        sink("DEPLOY", "deploy", "Traffic switched to the new deployment")
        return live

    async def _finish(self, dep: Deployment) -> None:
        now = self._clock.now()
        plan = await self._plan(dep)
        dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
        dep = await self._go_live(dep, plan, self._logs.sink(dep.id))
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

    async def _fail(self, deployment_id: str, key: StepKey | None, failure: StepFailed) -> None:
        for _ in range(5):  # re-read and retry if something else wrote in between
            dep = await asyncio.to_thread(self._store.deployment_by_id, deployment_id)
            if dep is None or dep.terminal:
                return
            dep = replace(dep, progress=copy.deepcopy(dep.progress), timing=dict(dep.timing))
            sink = self._logs.sink(dep.id)
            # A reason may quote what the app printed (its last output): the API shows it, so mask it.
            failure = StepFailed(failure.code, self._logs.masked(dep.id, failure.message))
            key = key or next_leaf(dep.progress)  # an unexpected error: blame the step it happened in
            if key is not None:
                steps.mark(dep.progress, key, steps.ERROR, self._now(), failure.reason())
            sink(steps.stage_of(key) if key else "BUILD", (steps.component_of(key) if key else None) or "deploy",
                 f"ERROR {failure.code}: {failure.message}")
            if key and key[0] == "deploy":
                await self._run_failed_deploy_jobs(dep, sink)
            if await asyncio.to_thread(self._store.active_deployment_id, dep.app_id) != dep.id:
                await self._runtime.discard(dep.app_id, dep.id)
            failed = replace(dep.moved_to(Phase.ERROR, self._clock.now()), ended_reason=failure.reason())
            if await self._save(failed) is not None:
                return

    async def _run_failed_deploy_jobs(self, dep: Deployment, sink: LogSink) -> None:
        if not steps.has(dep.progress, ("deploy", "failed_deploy")):
            return
        plan = await self._plan(dep)
        for job in steps.find(dep.progress, ("deploy", "failed_deploy"))["steps"]:
            key = ("deploy", "failed_deploy", job["name"])
            steps.mark(dep.progress, key, steps.RUNNING, self._now())
            try:
                await self._run_job(plan, plan.unit(job["name"]), "failed_deploy", sink,
                                    started_by=dep.cause_details)
                steps.mark(dep.progress, key, steps.SUCCESS, self._now())
            except StepFailed as failure:
                steps.mark(dep.progress, key, steps.ERROR, self._now(),
                           {"code": failure.code, "message": self._logs.masked(dep.id, failure.message)})
