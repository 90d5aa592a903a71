"""Readiness and liveness probes for locally supervised processes.

Role: say whether a process answers on its port, the way DigitalOcean's ``health_check``
(readiness) and ``liveness_health_check`` do (reference §4.3; the probe itself, with its
defaults, is the plan's ``Probe``): an HTTP GET on ``http_path`` where any 2xx/3xx is healthy, or
a plain TCP connect when no path is set, repeated every ``period_seconds`` and judged only after
``success_threshold`` / ``failure_threshold`` results in a row.

It must not start, stop or signal processes — the supervisor acts on the verdicts — and it
only ever connects to the local host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from shoal.domain.plan import Probe

_MAX_STATUS_LINE = 8192
STARTUP_POLL = 0.2


async def probe_once(probe: Probe, host: str = "127.0.0.1") -> bool:
    """Run one check; True when healthy. Never raises for network trouble or timeouts."""
    try:
        async with asyncio.timeout(probe.timeout_seconds):
            reader, writer = await asyncio.open_connection(host, probe.port)
            try:
                if probe.http_path is None:
                    return True
                return await _http_ok(reader, writer, host, probe.port, probe.http_path)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return False


async def _http_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   host: str, port: int, path: str) -> bool:
    # A raw HTTP/1.1 request keeps the probe free of client pools and their own timeouts;
    # only the status line matters.
    target = path if path.startswith("/") else "/" + path
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "User-Agent: shoal-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n")
    writer.write(request.encode("latin-1"))
    await writer.drain()
    line = await reader.readuntil(b"\n")
    if len(line) > _MAX_STATUS_LINE:
        return False
    parts = line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return False
    return 200 <= int(parts[1]) < 400


class Streak:
    """Turns single results into verdicts: N successes or M failures in a row (sans I/O)."""

    def __init__(self, success_threshold: int, failure_threshold: int) -> None:
        self.success_threshold = success_threshold
        self.failure_threshold = failure_threshold
        self.successes = 0
        self.failures = 0
        self.verdict: bool | None = None

    def record(self, ok: bool) -> bool | None:
        """Count one result; return the verdict when it is reached or changes, else None."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            reached = self.successes >= self.success_threshold
        else:
            self.successes, self.failures = 0, self.failures + 1
            reached = self.failures >= self.failure_threshold
        if not reached or self.verdict is ok:
            return None
        self.verdict = ok
        return ok


async def watch(probe: Probe, report: Callable[[bool], None], host: str = "127.0.0.1",
                owned: Callable[[], bool] | None = None) -> None:
    """Probe forever on the probe's schedule, calling ``report`` whenever the verdict changes.

    With ``owned``, a probe that passed counts only when ``owned()`` (run in a thread) says the
    answer came from the watched process (``listening.owns_port``).

    Until the first verdict the probe looks again every ``STARTUP_POLL`` seconds, so an instance
    that comes up in 300 ms is ready in about that time rather than a whole period later; a
    failure still counts only once per period, so ``failure_threshold`` keeps its meaning.
    Runs until cancelled; the owner cancels it when the process it watches goes away.
    """
    loop = asyncio.get_running_loop()
    streak = Streak(probe.success_threshold, probe.failure_threshold)
    next_at = loop.time() + probe.initial_delay_seconds
    period_end = next_at + probe.period_seconds
    while True:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        ok = await probe_once(probe, host)
        if ok and owned is not None:
            ok = await asyncio.to_thread(owned)
        if streak.verdict is None and not ok:
            if loop.time() >= period_end:
                period_end += probe.period_seconds
                if (verdict := streak.record(False)) is not None:
                    report(verdict)
            next_at = loop.time() + min(STARTUP_POLL, probe.period_seconds)
            continue
        # Periods count from the start of each probe, like the kubelet, so a slow
        # response does not stretch the schedule.
        next_at = max(next_at, loop.time() - probe.period_seconds) + probe.period_seconds
        verdict = streak.record(ok)
        if verdict is not None:
            report(verdict)
