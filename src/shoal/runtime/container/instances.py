"""Supervising the containers of services and workers: start or adopt, probe, follow, restart, stop.

Role: the container runtime's counterpart of the local supervisor. Each instance is one container;
this module keeps it running the way DigitalOcean does: its output followed into the RUN log, its
readiness checks (the local runtime's ``health.watch``, aimed at the port the container publishes on
127.0.0.1) gating traffic, a failing liveness check or an unexpected exit reported as RUN_RESTARTED
lines (the last lines it printed and why it ended — an out-of-memory kill says so) and the same
container started again after an exponential back-off. Stopping is the engine's SIGTERM, then
SIGKILL after the grace period.

After shoal restarts, a container found running with the instance's labels is *adopted*: followed
from now on and probed again, never started twice.

Must not: decide what runs (callers hand it complete ``RunSpec``s) or build images. Every task is
owned here and ends by ``stop``/``stop_all``; the log followers are threads (a followed stream
blocks until its container exits) that end with their containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import Probe
from shoal.runtime.container import containers
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.containers import Exit, Found, RunSpec
from shoal.runtime.local.health import watch
from shoal.runtime.local.listening import namespace_ports
from shoal.runtime.local.supervisor import Backoff

log = logging.getLogger("shoal.runtime.container")
Sink = Callable[[str, str], None]  # (stage, line) for one instance's component
TAIL_LINES = 50
SETTLE_SECONDS = 1.0  # a worker (no readiness check) that stays up this long counts as ready


@dataclass(eq=False)
class Instance:
    """One instance: its container as last seen, and what gates its traffic."""

    name: str  # the instance name (``RunUnit.instance_names``)
    spec: RunSpec
    sink: Sink
    readiness: Probe | None = None  # aimed at the container's own port; re-aimed at the published one
    liveness: Probe | None = None
    grace_seconds: float = 120
    on_ready: Callable[[Instance, bool], None] = lambda inst, ready: None
    container_id: str | None = None
    host_port: int | None = None
    ready: bool = False
    restarts: int = 0
    last_exit: str | None = None  # how its container last ended unasked ("exited with status 1", ...)
    started_at: datetime | None = None
    state: str = "starting"  # starting, running, backoff, stopped
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _exits: int = 0
    _readiness_failed: bool = False

    def touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def aimed(self, probe: Probe | None) -> Probe | None:
        """A check on the published port (checks on other ports of the container cannot be reached)."""
        if probe is None or self.host_port is None:
            return None
        return replace(probe, port=self.host_port)


class Supervisor:
    def __init__(self, access: EngineAccess, backoff: Backoff = Backoff()) -> None:
        self._access = access
        self._backoff = backoff
        self._instances: dict[str, Instance] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def instances(self) -> list[Instance]:
        return list(self._instances.values())

    def get(self, name: str) -> Instance | None:
        return self._instances.get(name)

    async def start(self, inst: Instance, adopt: Found | None = None) -> None:
        """Run (or adopt) the instance's container now and supervise it in the background."""
        old = self._instances.get(inst.name)
        if old is not None:
            await self.stop(old.name)
        self._instances[inst.name] = inst
        try:
            since = await self._bring_up(inst, adopt)
        except BaseException:
            inst.state = "stopped"
            inst._done.set()
            self._instances.pop(inst.name, None)
            raise
        self._tasks[inst.name] = asyncio.create_task(self._supervise(inst, since), name=f"supervise {inst.name}")

    async def _bring_up(self, inst: Instance, adopt: Found | None) -> int | None:
        """The container running: adopted as it runs, else made afresh (a new container has a log of
        its own, so a restart never repeats earlier lines). Returns from when to follow its log."""
        if adopt is not None and adopt.running:
            inst.container_id, inst.host_port = adopt.id, adopt.host_port
            since: int | None = int(time.time())  # what it printed before shoal came back is told already
        else:
            try:  # ``run`` replaces a stopped container of the same name
                running = await self._access.call(containers.run, inst.spec)
            except Exception as exc:  # the engine refused: a missing image, a bad command, a limit
                raise StepFailed("ContainerExitNonZero", f"{inst.name} could not be started: {exc}") from exc
            inst.container_id, inst.host_port, since = running.id, running.host_port, None
        inst.started_at = datetime.now(UTC)
        inst.state = "starting"
        inst.touch()
        return since

    async def wait_ready(self, name: str, timeout: float, max_crashes: int = 3) -> bool:
        """True once the instance passes readiness; False on failed readiness, crashes or timeout."""
        inst = self._instances.get(name)
        if inst is None:
            return False
        loop = asyncio.get_running_loop()
        deadline, exits_before = loop.time() + timeout, inst._exits
        while True:
            if inst.ready:
                return True
            if inst._readiness_failed or inst.state == "stopped" or inst._exits - exits_before >= max_crashes:
                return False
            changed = inst._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            if loop.time() >= deadline:
                return inst.ready

    async def why_down(self, name: str) -> str | None:
        """How the instance's container last ended (for a failed wait's reason): told by its report,
        else asked of the engine — a wait that fails on an exit returns before the exit is reported."""
        inst = self._instances.get(name)
        if inst is None or inst.last_exit is not None or inst.container_id is None:
            return inst.last_exit if inst else None
        try:
            found = await self._access.call(containers.exit_of, inst.container_id)
        except Exception:  # already replaced by its restart
            return inst.last_exit
        return found.describe() if found is not None else None

    async def listening(self, name: str) -> set[int]:
        """The ports the instance's container listens on now (empty when it is down or unknown)."""
        inst = self._instances.get(name)
        if inst is None or inst.container_id is None:
            return set()
        try:
            pid = await self._access.call(containers.main_pid, inst.container_id)
        except Exception:  # gone meanwhile
            return set()
        return namespace_ports(pid) if pid else set()

    async def stop(self, name: str, grace: float | None = None) -> None:
        """Stop and remove the container (SIGTERM, SIGKILL after the grace period); idempotent."""
        inst = self._instances.get(name)
        if inst is None:
            return
        if grace is not None:
            inst.grace_seconds = grace
        inst._stop.set()
        task = self._tasks.pop(name, None)
        if task is not None:
            await asyncio.shield(task)
        if self._instances.get(name) is inst:
            del self._instances[name]

    async def stop_all(self, grace: float | None = None) -> None:
        await asyncio.gather(*(self.stop(name, grace) for name in list(self._instances)), return_exceptions=True)

    # -- one instance's life ----------------------------------------------------------------------

    async def _supervise(self, inst: Instance, since: int | None) -> None:
        crashes = 0
        try:
            while True:
                ending = await self._lifetime(inst, since)
                if ending == "stop":
                    return
                uptime = (datetime.now(UTC) - inst.started_at).total_seconds() if inst.started_at else 0
                crashes = 1 if uptime >= self._backoff.reset_after else crashes + 1
                delay = self._backoff.delay(crashes)
                await self._report(inst, ending, delay)
                inst.state = "backoff"
                inst.touch()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await inst._stop.wait()
                if inst._stop.is_set():
                    return
                try:
                    since = await self._bring_up(inst, None)
                except StepFailed as failed:  # e.g. the image was removed: keep trying, like a crash
                    inst.sink("RUN_RESTARTED", failed.message)
                    inst.container_id, since = None, None
                    continue
                finally:
                    inst.restarts += 1
        finally:
            await self._remove(inst)

    async def _lifetime(self, inst: Instance, since: int | None) -> str | Exit:
        """Watch one run of the container; "stop", "liveness" or how it exited."""
        if inst.container_id is None:  # it could not be made: counts as a crash (back-off, then again)
            inst._exits += 1
            return Exit(code=127, oom_killed=False)
        loop = asyncio.get_running_loop()
        exited, unhealthy = asyncio.Event(), asyncio.Event()
        threading.Thread(target=self._follow, args=(inst, since, loop, exited), daemon=True,
                         name=f"logs {inst.name}").start()
        checks = [asyncio.create_task(self._readiness(inst))]
        if (liveness := inst.aimed(inst.liveness)) is not None:
            checks.append(asyncio.create_task(watch(liveness, lambda ok: None if ok else unhealthy.set())))
        waits = {asyncio.create_task(inst._stop.wait()): "stop", asyncio.create_task(exited.wait()): "exit",
                 asyncio.create_task(unhealthy.wait()): "liveness"}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            ending = waits[done.pop()]
        finally:
            for task in [*checks, *waits]:
                task.cancel()
            await asyncio.gather(*checks, *waits, return_exceptions=True)
            self._set_ready(inst, False)
            inst._exits += 1
        if ending == "exit":
            try:
                found = await self._access.call(containers.exit_of, inst.container_id)
            except Exception:  # removed behind shoal's back
                found = None
            return found if found is not None else Exit(code=-1, oom_killed=False)
        if ending == "liveness":
            await self._access.call(containers.stop, inst.container_id, inst.grace_seconds)
        return ending

    def _follow(self, inst: Instance, since: int | None, loop: asyncio.AbstractEventLoop, exited: asyncio.Event) -> None:
        def line(text: str) -> None:
            inst.tail.append(text)
            inst.sink("RUN", text)

        try:
            containers.follow(self._access.engine, inst.container_id or "", line, since=since)
        except Exception as exc:  # the engine went away or the container was removed
            log.debug("log stream of %s ended: %s", inst.name, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(exited.set)

    async def _readiness(self, inst: Instance) -> None:
        probe = inst.aimed(inst.readiness)
        if probe is None:
            await asyncio.sleep(SETTLE_SECONDS)
            self._set_ready(inst, True)
            return
        await watch(probe, lambda ok: self._set_ready(inst, ok))

    def _set_ready(self, inst: Instance, ok: bool) -> None:
        inst._readiness_failed = not ok
        if ok and inst.state == "starting":
            inst.state = "running"
        if inst.ready != ok:
            inst.ready = ok
            try:
                inst.on_ready(inst, ok)
            except Exception:
                log.exception("readiness listener failed for %s", inst.name)
        inst.touch()

    async def _report(self, inst: Instance, ending: str | Exit, delay: float) -> None:
        for text in list(inst.tail):
            inst.sink("RUN_RESTARTED", text)
        why = "failed its liveness check" if ending == "liveness" else \
            ending.describe() if isinstance(ending, Exit) else str(ending)
        inst.last_exit = why
        inst.sink("RUN_RESTARTED", f"instance {inst.name} {why}; restarting in {delay:g} s")
        inst.tail.clear()

    async def _remove(self, inst: Instance) -> None:
        """The container stopped (its grace period) and removed; the instance is done."""
        inst.state = "stopped"
        try:
            if inst.container_id:
                await asyncio.shield(self._access.call(containers.stop, inst.container_id, inst.grace_seconds))
                await asyncio.shield(self._access.call(containers.remove, inst.container_id))
        except Exception:
            log.exception("could not remove the container of %s", inst.name)
        finally:
            inst._done.set()
            inst.touch()
