"""Readiness and liveness probes for locally supervised processes.

Role: say whether a process answers on its port, the way DigitalOcean's ``health_check``
(readiness) and ``liveness_health_check`` do (reference §4.3): an HTTP GET on ``http_path``
where any 2xx/3xx is healthy, or a plain TCP connect when no path is set, repeated every
``period_seconds`` and judged only after ``success_threshold`` / ``failure_threshold``
results in a row.

It must not start, stop or signal processes — the supervisor acts on the verdicts — and it
only ever connects to the local host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

# DigitalOcean's documented defaults (reference §4.3); liveness waits longer before judging
# so a slow boot is not mistaken for a hang.
READINESS_DEFAULTS: Mapping[str, float] = {
    "initial_delay_seconds": 0, "period_seconds": 10, "timeout_seconds": 1,
    "success_threshold": 1, "failure_threshold": 9,
}
LIVENESS_DEFAULTS: Mapping[str, float] = {
    "initial_delay_seconds": 5, "period_seconds": 10, "timeout_seconds": 1,
    "success_threshold": 1, "failure_threshold": 18,
}
_MAX_STATUS_LINE = 8192
STARTUP_POLL = 0.2


@dataclass(frozen=True)
class Probe:
    """One health check: where to look and how patiently to judge."""

    port: int
    http_path: str | None = None  # None → TCP connect check
    initial_delay_seconds: float = 0
    period_seconds: float = 10
    timeout_seconds: float = 1
    success_threshold: int = 1
    failure_threshold: int = 9

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"probe port out of range: {self.port}")
        if self.period_seconds <= 0 or self.timeout_seconds <= 0 or self.initial_delay_seconds < 0:
            raise ValueError("probe delay must be >= 0, period and timeout > 0")
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise ValueError("probe thresholds must be >= 1")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None, default_port: int, liveness: bool = False) -> Probe:
        """Build a probe from an AppSpec ``health_check``/``liveness_health_check`` object.

        Unset fields take DigitalOcean's defaults; ``port`` in the spec overrides ``default_port``
        (the component's ``http_port``). Values are assumed validated by ``shoal.spec``.
        """
        spec = spec or {}
        defaults = LIVENESS_DEFAULTS if liveness else READINESS_DEFAULTS

        def pick(key: str) -> float:
            value = spec.get(key)
            return float(value) if value is not None else defaults[key]

        path = spec.get("http_path") or None
        return cls(
            port=int(spec.get("port") or default_port),
            http_path=str(path) if path is not None else None,
            initial_delay_seconds=pick("initial_delay_seconds"),
            period_seconds=pick("period_seconds"),
            timeout_seconds=pick("timeout_seconds"),
            # DigitalOcean accepts only 1 for liveness success (reference §4.3).
            success_threshold=1 if liveness else int(pick("success_threshold")),
            failure_threshold=int(pick("failure_threshold")),
        )

    def scaled(self, speed: float) -> Probe:
        """The same probe with every duration divided by ``speed`` (fast dev loops and tests)."""
        return replace(
            self,
            initial_delay_seconds=self.initial_delay_seconds / speed,
            period_seconds=self.period_seconds / speed,
            timeout_seconds=self.timeout_seconds / speed,
        )


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


async def watch(probe: Probe, report: Callable[[bool], None], host: str = "127.0.0.1") -> None:
    """Probe forever on the probe's schedule, calling ``report`` whenever the verdict changes.

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
