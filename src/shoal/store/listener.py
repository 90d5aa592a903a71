"""Hearing other servers' writes: ``LISTEN shoal_changes`` on PostgreSQL, with a poll to fall back on.

A thread holds its own connection (not one of the pool's) listening on the channel the store's
write transactions notify (``store.changes``), and hands each change another server made to this
server's subscribers. Notifications sent while it was not listening are lost, so every time it
(re)connects it delivers ``EVERYTHING`` (drop every cache, look at every app again) first.

While it cannot listen (the connection is down, or ``mode="poll"`` because a pooler such as
PgBouncer in transaction mode cannot carry LISTEN), it polls instead: every app's ``revision``
(bumped by every write of the app or its deployments) against what it saw last. Token changes are
not polled: the API looks a token up again at least once a second anyway.
"""

from __future__ import annotations

import logging
import threading

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.domain.changes import APP, EVERYTHING, Change
from shoal.store.changes import CHANNEL, ChangeFeed, parse_payload
from shoal.store.tables import apps

log = logging.getLogger("shoal.store")

NOTIFY = "notify"
POLL = "poll"
POLL_SECONDS = 1.0
WAIT_SECONDS = 0.5  # how often the listening thread looks up from the socket (to notice ``stop``)


def conninfo(engine: Engine) -> str:
    """The libpq URL of the SQLAlchemy engine's database (for psycopg's own connections)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class RevisionPoll:
    """Which apps changed since the last look, from their revisions (deleted apps count as changed)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._seen: dict[str, int] | None = None

    def changed(self) -> list[str]:
        with self._engine.connect() as conn:
            now = {row.id: int(row.revision) for row in conn.execute(sa.select(apps.c.id, apps.c.revision))}
        before, self._seen = self._seen, now
        if before is None:
            return []
        return sorted({a for a, rev in now.items() if before.get(a) != rev} | (before.keys() - now.keys()))


class Listener:
    def __init__(self, engine: Engine, feed: ChangeFeed, mode: str = NOTIFY,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self._engine = engine
        self._feed = feed
        self._mode = mode
        self._poll_seconds = poll_seconds
        self._poll = RevisionPoll(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()  # set while notifications arrive (tests and logs read it)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shoal-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        self._poll_once()  # the baseline revisions
        while not self._stop.is_set():
            if self._mode == NOTIFY:
                try:
                    self._listen()
                except (psycopg.Error, OSError) as exc:
                    if not self._stop.is_set():
                        log.warning("not hearing other servers' changes (%s); polling until LISTEN works again",
                                    exc)
                self.listening.clear()
            if not self._stop.wait(self._poll_seconds):
                self._poll_once()

    def _listen(self) -> None:
        with psycopg.connect(conninfo(self._engine), autocommit=True, connect_timeout=5,
                             application_name="shoal-changes") as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            self._feed.deliver(Change(EVERYTHING, local=False))  # whatever happened while not listening
            while not self._stop.is_set():
                for note in conn.notifies(timeout=WAIT_SECONDS):
                    self._heard(note.payload)
                conn.execute("SELECT 1")  # a dead connection raises here, not only on the next notification

    def _heard(self, raw: str) -> None:
        parsed = parse_payload(raw)
        if parsed is None:
            return
        change, origin = parsed
        if origin != self._feed.origin:  # this server's own writes were delivered when they committed
            self._feed.deliver(change)

    def _poll_once(self) -> None:
        try:
            changed = self._poll.changed()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not poll for changes: %s", exc)
            return
        if self.listening.is_set():
            return  # notifications carry these (the poll only keeps its baseline current)
        for app_id in changed:
            self._feed.deliver(Change(APP, app_id, local=False))
