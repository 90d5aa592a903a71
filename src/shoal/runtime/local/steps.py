"""Build steps as processes: one command at a time, its output streamed to the build log, as the
app's own user when shoal isolates apps (``identity``).

A step is over when its first process exits; what it left behind in its process group is
ended then (a build must not leave processes running, as DigitalOcean's build container does
not), and output still held open by something that escaped the group (``setsid``) is waited
for only briefly, so a build that starts a daemon does not hang the deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shoal.domain.deployments import StepFailed
from shoal.runtime.local.process import signal_group, spawn_exec

OUTPUT_DRAIN_SECONDS = 2.0


class Log(Protocol):
    """Where a build's lines go; a piece of a line too long to hold whole comes ``continued``."""

    def __call__(self, line: str, continued: bool = False) -> None: ...


@dataclass(frozen=True)
class Steps:
    """How a build's commands run: their environment, where their output goes, and as whom."""

    env: Mapping[str, str]
    log: Log
    user: tuple[int, int] | None = None  # (uid, gid) of the app, when apps are isolated

    async def run(self, argv: list[str], cwd: Path, shown: str) -> None:
        """Run one command; a non-zero exit is ``BuildJobExitNonZero``."""
        self.log(f"=> Running {shown}")
        if os.sep not in argv[0] and shutil.which(argv[0], path=self.env.get("PATH", os.defpath)) is None:
            raise StepFailed("BuildJobFailed", f"{argv[0]} is not installed on this machine; it is needed to run {shown}")
        try:
            child = await spawn_exec(argv, cwd, self.env, self._line, self._piece, self.user)
        except FileNotFoundError as exc:
            raise StepFailed("BuildJobFailed", f"{argv[0]} is not installed on this machine; it is needed to run "
                                               f"{shown}") from exc
        try:
            await child.protocol.exited.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.protocol.output_closed.wait(), OUTPUT_DRAIN_SECONDS)
        finally:
            # Its own session, so the whole tree (npm → node → ...) goes, not just the first
            # process — after it ended, and at once when the deployment is cancelled.
            signal_group(child.pid, signal.SIGKILL)
            if child.transport.get_returncode() is None:
                await child.protocol.exited.wait()
            child.transport.close()
        if child.exit_code != 0:
            raise StepFailed("BuildJobExitNonZero", f"{shown} exited with status {child.exit_code}")

    def _line(self, raw: bytes) -> None:
        # "\r" redraws (progress bars) become separate lines; blank ones are dropped.
        for part in raw.split(b"\r"):
            if part.strip():
                self.log(part.decode(errors="replace").rstrip())

    def _piece(self, raw: bytes) -> None:
        self.log(raw.decode(errors="replace"), continued=True)
