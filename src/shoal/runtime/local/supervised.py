"""What the supervisor is asked to run and what it reports back: the spec of one instance, its
live state, the restart back-off, and where output goes. Plain records, no behaviour beyond the
back-off arithmetic, so the supervisor's module holds only supervision.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shoal.domain.plan import Probe

State = Literal["starting", "running", "backoff", "stopped", "exited"]
Ending = Literal["exit", "stop", "liveness", "timeout"]

TAIL_LINES = 50


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``initial`` doubling up to ``maximum``; a run of ``reset_after`` seconds forgives."""

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0

    def delay(self, crashes: int) -> float:
        """Delay before the restart that follows the ``crashes``-th crash in a row (1-based)."""
        return float(min(self.maximum, self.initial * 2 ** max(0, crashes - 1)))


@dataclass(frozen=True)
class ProcessSpec:
    """What to run for one instance; the caller builds the complete environment."""

    name: str  # unique in the supervisor, e.g. "<app>-web-<dep8>-0"
    command: str  # run with /bin/sh -c
    cwd: Path
    env: Mapping[str, str]  # the complete environment, PATH included
    readiness: Probe | None = None
    liveness: Probe | None = None
    grace_period_seconds: float = 120  # SIGTERM, then SIGKILL after this
    restart: bool = True  # False for one-shot processes started with start()
    app_id: str = ""  # whose it is, for the durable process records
    user: tuple[int, int] | None = None  # (uid, gid) to run as: the app's own user when apps are isolated

    @property
    def uid(self) -> int | None:
        return self.user[0] if self.user else None

    @property
    def gid(self) -> int | None:
        return self.user[1] if self.user else None


@dataclass(eq=False)
class Instance:
    """The live view of one supervised process; fields are updated in place by the supervisor."""

    name: str
    spec: ProcessSpec
    pid: int | None = None
    restart_count: int = 0
    ready: bool = False
    last_exit_code: int | None = None  # shell convention: 128 + signal for a signalled death
    last_ending: Ending | None = None  # why the last process ended
    state: State = "starting"
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _stop_grace: float | None = field(default=None, init=False, repr=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _exits: int = field(default=0, init=False, repr=False)
    _readiness_failed: bool = field(default=False, init=False, repr=False)

    def _touch(self) -> None:
        # Wake everyone waiting for a change (wait_ready) and arm a fresh event for the next one.
        self._changed.set()
        self._changed = asyncio.Event()
