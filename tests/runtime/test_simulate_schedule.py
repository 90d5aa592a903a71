"""The simulate runtime runs SCHEDULED jobs on their cron, as the local runtime does (issue 13
item 7): each run is a job invocation, recorded SUCCEEDED or FAILED; a retired deployment's
schedules stop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from shoal.domain import jobs
from shoal.domain.plan import components
from shoal.domain.ports import DeployTarget
from shoal.runtime.simulate import SimulateRuntime
from tests.runtime.aio import run_async


class MemoryJobs:
    """The job store's memory twin: invocations by id."""

    def __init__(self) -> None:
        self.saved: dict[str, jobs.JobInvocation] = {}

    def save_invocation(self, inv: jobs.JobInvocation) -> None:
        self.saved[inv.id] = inv

    def get_invocation(self, app_id: str, invocation_id: str) -> jobs.JobInvocation | None:
        return self.saved.get(invocation_id)

    def list_invocations(self, app_id: str, offset: int, limit: int, deployment_id: str | None = None,
                         job_names: list[str] | None = None) -> tuple[list[jobs.JobInvocation], int]:
        found = list(self.saved.values())
        return found[offset:offset + limit], len(found)

    def alert_destinations(self, app_id: str) -> dict[str, Any]:
        return {}

    def set_alert_destinations(self, *args: Any) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _target(deployment_id: str, fail: bool = False) -> DeployTarget:
    job: dict[str, Any] = {"name": "nightly", "kind": "SCHEDULED", "run_command": "report",
                           "schedule": {"cron": "0 12 * * *", "time_zone": "UTC"},
                           "git": {"repo_clone_url": "https://example.com/r.git"}}
    if fail:
        job["envs"] = [{"key": "SHOAL_SIMULATE_FAIL", "value": "job"}]
    return DeployTarget(app_id="app-1", app_name="sched", deployment_id=deployment_id,
                        spec={"name": "sched", "jobs": [job]})


async def _invocations(store: MemoryJobs, count: int) -> list[jobs.JobInvocation]:
    async with asyncio.timeout(10):
        while len([i for i in store.saved.values() if i.phase in jobs.FINISHED]) < count:
            await asyncio.sleep(0.02)
    return sorted(store.saved.values(), key=lambda i: i.created_at)


@run_async
async def test_scheduled_jobs_fire_on_their_cron_and_stop_when_retired() -> None:
    store, clock, lines = MemoryJobs(), Clock(), []
    runtime = SimulateRuntime(job_store=store, now=clock)
    target = _target("dep-1")
    [job] = components(target.spec)
    await runtime.start(target, job, lambda stage, name, line: lines.append((stage, line)))
    assert not store.saved  # not due yet: 12:00 is half a minute away
    clock.now += timedelta(seconds=31)
    [first] = await _invocations(store, 1)
    assert first.phase == jobs.SUCCEEDED and first.job_name == "nightly" and first.deployment_id == "dep-1"
    assert first.trigger == {"type": "SCHEDULED", "scheduled": {"schedule": {"cron": "0 12 * * *",
                                                                             "time_zone": "UTC"}}}
    assert ("RUN", "Job nightly succeeded") in lines
    await runtime.retire("app-1", "dep-1")
    clock.now += timedelta(days=1)
    await asyncio.sleep(0.3)
    assert len(store.saved) == 1  # retired: no more runs
    await runtime.close()


@run_async
async def test_a_failing_scheduled_run_is_recorded_failed() -> None:
    store, clock = MemoryJobs(), Clock()
    runtime = SimulateRuntime(job_store=store, now=clock)
    target = _target("dep-2", fail=True)
    await runtime.restore(target, lambda stage, name, line: None)  # after a restart of shoal, too
    clock.now += timedelta(minutes=1)
    [run] = await _invocations(store, 1)
    assert run.phase == jobs.FAILED and run.completed_at is not None
    await runtime.close()
