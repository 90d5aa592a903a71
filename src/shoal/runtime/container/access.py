"""The container runtime's hold on the engine: opened on first use, blocking calls off the event loop.

Role: ``shoal serve --runtime container`` opens the engine at start (to fail early with the reason)
and hands the session over; anything else that builds the platform (admin commands, tests) never
touches the engine unless a runtime step runs, because opening it here is deferred to the first call.
Every SDK call blocks, so each runs in this object's own thread pool — not asyncio's default one,
which git, builds and the store share, and which a few slow ``stop`` calls (each waits out a grace
period) would otherwise fill.

Must not: close a session it was handed (whoever opened it closes it).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from shoal.runtime.container.engine import Engine
from shoal.runtime.container.session import EngineSession

P = ParamSpec("P")
T = TypeVar("T")
WORKERS = 16


class EngineAccess:
    def __init__(self, open_session: Callable[[], EngineSession], session: EngineSession | None = None) -> None:
        self._open = open_session
        self._session = session
        self._owned = session is None  # a session opened here is closed here
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="shoal-engine")

    @property
    def engine(self) -> Engine:
        """The engine (opened now if this is the first use; ``EngineUnavailable`` says why not)."""
        with self._lock:
            if self._session is None:
                self._session = self._open()
            return self._session.engine

    async def ready(self) -> Engine:
        """The engine, opened (if it must be) off the event loop."""
        return await self.run(lambda: self.engine)

    @property
    def opened(self) -> bool:
        return self._session is not None

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(engine, *args, **kwargs)`` in the engine's thread pool."""
        def run() -> T:
            return fn(self.engine, *args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """``fn(*args, **kwargs)`` (no engine argument) in the engine's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def client_env(self) -> dict[str, str]:
        """The environment the engine's command-line client needs (shoal's private podman files)."""
        conf = self._session.conf if self._session is not None else None
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
                **(conf.env() if conf else {})}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._session is not None and self._owned:
                self._session.close()
            self._session = None
