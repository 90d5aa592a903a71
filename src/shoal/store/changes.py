"""Change notifications: after a transaction that changed an app (or its deployments) or a token
commits, the store tells its subscribers what changed.

In this process the subscribers hear at once, in the writing thread, after the commit (a reader
that cached rows from before the write drops them). On PostgreSQL the same transaction also sends
``NOTIFY shoal_changes`` with the change and this feed's ``origin``: the notification is delivered
to other servers only if, and when, the write commits (``store.listener`` hears it there). SQLite
has no other servers, so nothing is sent.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from shoal.domain.changes import APP, Change

log = logging.getLogger("shoal.store")

CHANNEL = "shoal_changes"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def payload(kind: str, key: str, origin: str) -> str:
    return json.dumps({"k": kind, "id": key, "o": origin}, separators=(",", ":"))


def parse_payload(raw: str) -> tuple[Change, str] | None:
    """The change a notification carries and who sent it (None if it is not one of ours)."""
    try:
        found = json.loads(raw)
        return Change(str(found["k"]), str(found["id"]), local=False), str(found["o"])
    except (ValueError, KeyError, TypeError):
        return None


class ChangeFeed:
    def __init__(self) -> None:
        self.origin = uuid.uuid4().hex  # this process: what it hears back from itself it already knew
        self._subscribers: list[Callable[[Change], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Callable[[Change], None]) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def deliver(self, change: Change) -> None:
        """Tell every subscriber; one that fails must not keep the others (or the writer) from hearing."""
        for subscriber in list(self._subscribers):
            try:
                subscriber(change)
            except Exception:
                log.exception("a change subscriber failed on %s", change)

    def emit(self, app_id: str) -> None:
        """An app changed in this process (the write has committed)."""
        self.deliver(Change(APP, app_id))

    def announce(self, conn: Connection, kind: str, key: str) -> None:
        """Within the writing transaction: other servers hear of it once it commits (PostgreSQL)."""
        if conn.dialect.name == "postgresql":
            conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload(kind, key, self.origin)})

    @contextmanager
    def changing(self, engine: Engine, kind: str, key: str) -> Iterator[Connection]:
        """A write transaction that changes ``key``: announced within it, delivered here after it
        commits; nothing is announced or delivered when it raises (and rolls back)."""
        with engine.begin() as conn:
            yield conn
            self.announce(conn, kind, key)
        self.deliver(Change(kind, key))
