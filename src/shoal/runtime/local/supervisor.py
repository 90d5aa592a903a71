"""The process supervisor of the local runtime: spawn, health-check, restart with back-off.

Role: keep each component instance running the way a DigitalOcean container runs. A command
runs under ``/bin/sh -c`` (``run_command`` semantics) in its own session, so the whole process
group — ``npm`` and the ``node`` it starts, ``sh`` and its background jobs — lives and dies
together. Output is merged, split into lines and handed to ``on_output``; an unexpected exit
is reported to ``on_exit`` with the last lines (the runtime turns those into ``RUN_RESTARTED``
logs, reference §6) and restarted after an exponential back-off. A liveness probe that fails
``failure_threshold`` times in a row counts as a crash (§4.3). Stopping sends SIGTERM to the
group and SIGKILL after the grace period (§4.2).

It must not build sources, compose environments or decide what runs: callers hand it complete
``ProcessSpec``s. Every background task belongs to the supervisor and ends by ``stop``/``stop_all``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from types import TracebackType

from shoal.core.aio import within
from shoal.runtime.local.groups import ProcessRecords
from shoal.runtime.local.health import watch
from shoal.runtime.local.listening import owns_port
from shoal.runtime.local.process import Child, signal_group, spawn, terminate
from shoal.runtime.local.supervised import Backoff, Ending, Instance, ProcessSpec, State

__all__ = ["Backoff", "Instance", "ProcessSpec", "State", "Supervisor"]

log = logging.getLogger(__name__)

# After SIGKILL the pipe closes at once unless a process escaped the group (setsid) and kept it.
OUTPUT_DRAIN_SECONDS = 2.0


async def _first(events: Mapping[Ending, asyncio.Event], deadline: float | None) -> Ending:
    """The name of the first event set, or "timeout" once the loop time passes ``deadline``."""
    waiters = {asyncio.create_task(event.wait()): name for name, event in events.items()}
    try:
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return waiters[done.pop()] if done else "timeout"


class Supervisor:
    """Owns every process it starts and every task watching them."""

    def __init__(self, on_output: Callable[[str, str], None],
                 on_exit: Callable[[str, int, list[str]], None] | None = None, *,
                 on_ready: Callable[[str, bool], None] | None = None,
                 backoff: Backoff = Backoff(), settle_seconds: float = 1.0,
                 records: ProcessRecords | None = None,
                 groups: tuple[Callable[[int], None], Callable[[int], None]] | None = None,
                 on_piece: Callable[[str, str], None] | None = None) -> None:
        """``on_output(name, line)`` gets every output line (of one too long to hold whole, all the
        pieces but the last go to ``on_piece`` when given); ``on_exit(name, code, last_lines)``
        every exit of a started process that ``stop`` did not ask for; ``on_ready(name, ready)``
        every change of an instance's readiness (its checks passing or failing, its process gone).
        ``settle_seconds`` is how long a process without a readiness probe must stay up to count
        as ready. ``records`` keeps every running group on disk, so a later shoal can end what
        this one leaves behind if it is killed; ``groups`` (started, ended) hears of every process
        group spawned and every one known gone (the reaper's bookkeeping)."""
        self._records = records
        self._groups = groups
        self._on_piece = on_piece
        self._on_output = on_output
        self._on_exit = on_exit
        self._on_ready = on_ready
        self._backoff = backoff
        self._settle_seconds = settle_seconds
        self._instances: dict[str, Instance] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop_all()

    def instances(self) -> list[Instance]:
        return list(self._instances.values())

    def last_output(self, name: str, lines: int = 8, limit: int = 1500) -> str:
        """The last lines an instance printed, joined with `` | `` (for a failure's reason)."""
        inst = self._instances.get(name)
        if inst is None:
            return ""
        text = " | ".join(line.strip() for line in list(inst.tail)[-lines:] if line.strip())
        return text if len(text) <= limit else "..." + text[-limit:]

    async def start(self, spec: ProcessSpec) -> Instance:
        """Spawn ``spec`` now and supervise it in the background; OSError if it cannot start."""
        inst = await self._register(spec)
        child = await self._spawn(inst)
        self._tasks[spec.name] = asyncio.create_task(self._supervise(inst, child), name=f"supervise {spec.name}")
        return inst

    async def run_once(self, spec: ProcessSpec, timeout: float | None = None) -> int:
        """Run a one-shot process to completion and return its exit code (128 + signal if signalled).

        Output streams through ``on_output``; ``on_exit`` is not called. When ``timeout`` passes
        the group is terminated (SIGTERM, SIGKILL after the grace period) and TimeoutError is
        raised. Cancelling terminates the group the same way before the cancellation propagates;
        ``stop(name)`` ends it too and the signalled exit code is returned.
        """
        inst = await self._register(spec)
        try:
            child = await self._spawn(inst)
            deadline = None if timeout is None else child.started_at + timeout
            ending = await self._lifetime(inst, child, deadline)
        finally:
            inst.state = "stopped" if inst._stop.is_set() else "exited"
            inst._done.set()
            inst._touch()
            if self._instances.get(spec.name) is inst:
                del self._instances[spec.name]
        if ending == "timeout":
            raise TimeoutError(f"{spec.name} did not finish within {timeout} s")
        assert inst.last_exit_code is not None
        return inst.last_exit_code

    async def wait_ready(self, name: str, timeout: float, *, max_crashes: int = 3) -> bool:
        """Wait until the instance passes readiness; False on failed readiness or on timeout.

        Also False when the process exits ``max_crashes`` times while waiting, or exits for good.
        """
        inst = self._instances.get(name)
        if inst is None:
            raise KeyError(f"no supervised instance named {name!r}")
        loop = asyncio.get_running_loop()
        deadline, exits_before = loop.time() + timeout, inst._exits
        while True:
            if inst.ready:
                return True
            if (inst._readiness_failed or inst.state in ("stopped", "exited")
                    or inst._exits - exits_before >= max_crashes):
                return False
            changed = inst._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            if loop.time() >= deadline:
                return inst.ready

    async def stop(self, name: str, grace: float | None = None) -> None:
        """Stop without restarting (group SIGTERM, SIGKILL after ``grace`` or the spec's); idempotent."""
        inst = self._instances.get(name)
        if inst is None:
            return
        if not inst._stop.is_set():
            inst._stop_grace = grace
            inst._stop.set()
        # Shielded: a caller that gives up waiting must not leave the process half-stopped.
        await asyncio.shield(inst._done.wait())
        task = self._tasks.pop(name, None)
        if self._instances.get(name) is inst:
            del self._instances[name]
        if task is not None:
            await task  # already finished; re-raises a supervision bug instead of hiding it

    async def stop_all(self, grace: float | None = None) -> None:
        """Stop every instance, in parallel."""
        async with asyncio.TaskGroup() as group:
            for name in list(self._instances):
                group.create_task(self.stop(name, grace))

    async def _register(self, spec: ProcessSpec) -> Instance:
        old = self._instances.get(spec.name)
        if old is not None and not old._done.is_set():
            raise ValueError(f"an instance named {spec.name!r} is already running")
        if old is not None:
            await self.stop(spec.name)  # an exited one-shot: collect its task
        inst = Instance(spec.name, spec)
        self._instances[spec.name] = inst
        return inst

    async def _spawn(self, inst: Instance) -> Child:
        """Spawn the first process of an instance; on failure the name is free again."""
        try:
            return await self._spawn_next(inst)
        except BaseException:
            inst.state = "exited"
            inst._done.set()  # a concurrent stop() must not wait forever
            if self._instances.get(inst.name) is inst:
                del self._instances[inst.name]
            raise

    async def _spawn_next(self, inst: Instance) -> Child:
        # The tail is per process and output may arrive before anyone awaits the child.
        inst.tail.clear()
        child = await spawn(inst.spec.command, inst.spec.cwd, inst.spec.env, lambda raw: self._emit(inst, raw),
                            lambda raw: self._emit(inst, raw, continued=True), inst.spec.user)
        if self._groups is not None:
            self._groups[0](child.pid)
        if self._records is not None:
            await asyncio.to_thread(self._records.started, inst.name, child.pid, inst.spec.app_id)
        inst.pid, inst._readiness_failed, inst.state = child.pid, False, "starting"
        self._readiness(inst, False)
        inst._touch()
        return child

    async def _supervise(self, inst: Instance, child: Child) -> None:
        """Run, watch and restart one instance until it is stopped (or, one-shot, exits)."""
        crashes = 0
        try:
            while True:
                await self._lifetime(inst, child, None)
                if inst._stop.is_set():
                    inst.state = "stopped"
                    return
                assert inst.last_exit_code is not None
                self._report_exit(inst, inst.last_exit_code)
                if not inst.spec.restart:
                    inst.state = "exited"
                    return
                uptime = asyncio.get_running_loop().time() - child.started_at
                crashes = 1 if uptime >= self._backoff.reset_after else crashes + 1
                restarted, crashes = await self._restart(inst, crashes)
                if restarted is None:
                    inst.state = "stopped"
                    return
                child = restarted
        finally:
            if inst.state not in ("stopped", "exited"):
                inst.state = "stopped"  # cancelled, or a restart failed to spawn
            inst._done.set()
            inst._touch()

    async def _restart(self, inst: Instance, crashes: int) -> tuple[Child | None, int]:
        """Wait out the back-off and spawn again; None when a stop came first."""
        while True:
            inst.state = "backoff"
            inst._touch()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._backoff.delay(crashes)):
                    await inst._stop.wait()
            if inst._stop.is_set():
                return None, crashes
            try:
                child = await self._spawn_next(inst)
            except OSError as exc:  # e.g. the working directory vanished: keep trying, like a crash
                self._emit(inst, f"shoal: cannot start {inst.name}: {exc}".encode())
                inst.last_exit_code, crashes = 127, crashes + 1
                self._report_exit(inst, 127)
                continue
            inst.restart_count += 1
            return child, crashes

    async def _lifetime(self, inst: Instance, child: Child, deadline: float | None) -> Ending:
        """Watch one process from spawn to death; afterwards nothing of its group runs."""
        liveness_failed = asyncio.Event()
        ending: Ending | None = None
        settled = False  # True once the whole group is known to be dead
        try:
            async with asyncio.TaskGroup() as monitors:
                readiness = monitors.create_task(self._watch_readiness(inst, child.pid))
                liveness = None
                if inst.spec.liveness is not None:
                    liveness = monitors.create_task(
                        watch(inst.spec.liveness, lambda ok: None if ok else liveness_failed.set()))
                ending = await _first({"exit": child.protocol.exited, "stop": inst._stop,
                                       "liveness": liveness_failed}, deadline)
                readiness.cancel()
                if liveness is not None:
                    liveness.cancel()
            if ending == "exit":
                # Like a container: when the main process is gone, nothing it started may stay.
                signal_group(child.pid, signal.SIGKILL)
            else:
                await terminate(child, self._grace(inst))
            settled = True
            with contextlib.suppress(TimeoutError):
                await within(child.protocol.output_closed.wait(), OUTPUT_DRAIN_SECONDS)
        except asyncio.CancelledError:
            await terminate(child, self._grace(inst))
            settled = True
            raise
        finally:
            if not settled:
                signal_group(child.pid, signal.SIGKILL)  # a bug, or cancelled again while terminating
            if self._groups is not None:
                self._groups[1](child.pid)
            if self._records is not None:
                self._records.ended(inst.name, child.pid)
            child.transport.close()
            inst.pid = None
            self._readiness(inst, False)
            if child.transport.get_returncode() is not None:
                inst.last_exit_code = child.exit_code
            inst.last_ending = ending
            inst._exits += 1
            inst._touch()
        return ending

    async def _watch_readiness(self, inst: Instance, pgid: int) -> None:
        probe = inst.spec.readiness
        if probe is None:
            await asyncio.sleep(self._settle_seconds)
            self._set_ready(inst, True)
            return
        # Ready means this instance answers: not some other program that holds its port.
        await watch(probe, lambda ok: self._set_ready(inst, ok), owned=lambda: owns_port(probe.port, pgid))

    def _set_ready(self, inst: Instance, ok: bool) -> None:
        inst._readiness_failed = not ok
        self._readiness(inst, ok)
        if ok and inst.state == "starting":
            inst.state = "running"
        inst._touch()

    def _readiness(self, inst: Instance, ready: bool) -> None:
        if inst.ready == ready:
            return
        inst.ready = ready
        if self._on_ready is not None:
            try:
                self._on_ready(inst.name, ready)
            except Exception:  # a broken listener must not take supervision down with it
                log.exception("on_ready failed for %s", inst.name)

    def _grace(self, inst: Instance) -> float:
        if inst._stop.is_set() and inst._stop_grace is not None:
            return inst._stop_grace
        return inst.spec.grace_period_seconds

    def _emit(self, inst: Instance, raw: bytes, continued: bool = False) -> None:
        line = raw.decode("utf-8", errors="replace")
        if not continued:
            line = line.removesuffix("\r")
            inst.tail.append(line)
        try:
            if continued and self._on_piece is not None:
                self._on_piece(inst.name, line)
            else:
                self._on_output(inst.name, line)
        except Exception:  # a broken sink must not take the process down with it
            log.exception("on_output failed for %s", inst.name)

    def _report_exit(self, inst: Instance, code: int) -> None:
        if self._on_exit is None:
            return
        try:
            self._on_exit(inst.name, code, list(inst.tail))
        except Exception:
            log.exception("on_exit failed for %s", inst.name)
