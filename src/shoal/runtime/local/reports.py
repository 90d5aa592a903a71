"""What the supervisor says about the local runtime's instances, taken to where it belongs.

The supervisor knows processes by instance name only; ``Output`` (``records``) says whose each one is. A
line (or a piece of one too long to hold whole) goes to its deployment's log under its stage and component;
an unexpected exit becomes RUN_RESTARTED lines, naming an out-of-memory kill when ``usage`` saw one; a
readiness change marks the instance's address in the ingress's upstream. Split from ``runtime`` because
these are the supervisor's callbacks, not steps of a deployment; they must not start or stop anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from shoal.domain.ports import PieceSink
from shoal.runtime.local.instances import LOCALHOST
from shoal.runtime.local.records import Output
from shoal.runtime.local.usage import UsageMeter


class ProcessReports:
    """The supervisor's ``on_output``, ``on_piece``, ``on_exit`` and ``on_ready``."""

    def __init__(self, by_instance: Mapping[str, Output], usage: UsageMeter) -> None:
        """``by_instance`` is the runtime's own map (``Instances`` fills it as instances start and stop)."""
        self._by_instance = by_instance
        self._usage = usage

    def output(self, instance: str, line: str) -> None:
        found = self._by_instance.get(instance)
        if found:
            found.sink(found.stage, found.component, line)

    def piece(self, instance: str, line: str) -> None:
        """A piece of a line too long to hold whole: the sink joins the pieces to mask secrets."""
        found = self._by_instance.get(instance)
        if found:
            (found.sink.piece if isinstance(found.sink, PieceSink) else found.sink)(found.stage, found.component, line)

    def crashed(self, instance: str, code: int, last_lines: list[str]) -> None:
        found = self._by_instance.get(instance)
        if found:
            for line in last_lines:
                found.sink("RUN_RESTARTED", found.component, line)
            ended = (f"was killed for using more memory than its instance size allows (exit status {code})"
                     if self._usage.oom_kills(instance) else f"exited with status {code}")
            found.sink("RUN_RESTARTED", found.component, f"instance {instance} {ended}; restarting")

    def readiness(self, instance: str, ready: bool) -> None:
        found = self._by_instance.get(instance)
        served = found.upstream_of if found else None
        if served is not None and served.upstream is not None and served.port:
            served.upstream.mark((LOCALHOST, served.port), ready)
