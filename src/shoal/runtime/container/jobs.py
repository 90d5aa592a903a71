"""Jobs as run-to-completion containers: started, followed into the log, waited for, removed.

A job's container runs on its app's network with its instance size's limits, like the app's other
containers. Its output goes to the log as it is printed; its exit status decides the step (non-zero:
``ContainerExitNonZero``, saying when it was an out-of-memory kill); ``timeout_seconds`` (30 minutes
by default, as DigitalOcean) stops it (SIGTERM, then SIGKILL after the grace period). The container
is removed whatever happened, so a job repeated after a crash starts clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import RunUnit
from shoal.runtime.container import containers
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.containers import Exit, RunSpec

DEFAULT_TIMEOUT_SECONDS = 1800.0
WAIT_SLICE_SECONDS = 20.0


async def _ended(access: EngineAccess, container_id: str, timeout: float) -> Exit:
    """How the job's container ended; ``TimeoutError`` after ``timeout``. Waited for in slices, each
    followed by an inspect: under load podman's wait once missed an exit its inspect knew of."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError(f"container {container_id[:12]} still runs after {timeout} s")
        try:
            return await access.call(containers.wait, container_id, min(WAIT_SLICE_SECONDS, left))
        except TimeoutError:
            found = await access.call(containers.exit_of, container_id)
            if found is not None:
                return found


async def run_job(access: EngineAccess, spec: RunSpec, unit: RunUnit, log: Callable[[str], None]) -> None:
    try:
        running = await access.call(containers.run, spec)
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed("ContainerExitNonZero", f"job {unit.name} could not be started: {exc}") from exc
    log(f"running job {unit.name} in container {running.name}")
    timeout = unit.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
    following = asyncio.ensure_future(access.call(containers.follow, running.id, log))
    try:
        try:
            ended = await _ended(access, running.id, timeout)
        except TimeoutError as exc:
            await access.call(containers.stop, running.id, unit.termination.grace_period_seconds)
            raise StepFailed("ContainerExitNonZero", f"job {unit.name} did not finish within {timeout:.0f} s "
                                                     "and was stopped") from exc
        except asyncio.CancelledError:
            # Canceled (its invocation, or shoal stopping): the job stops as it would at a timeout. Before,
            # the log follower below waited for a container nobody stopped, and the cancel never ended.
            await asyncio.shield(access.call(containers.stop, running.id, unit.termination.grace_period_seconds))
            raise
        finally:
            await asyncio.shield(following)
    finally:
        await asyncio.shield(access.call(containers.remove, running.id))
    if ended.code != 0:
        raise StepFailed("ContainerExitNonZero", f"job {unit.name} {ended.describe()}")
