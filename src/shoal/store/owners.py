"""Who drives which app: one owner per app, through PostgreSQL advisory locks.

Why advisory locks rather than a lease row with a heartbeat: a lock lives exactly as long as the
database session that took it. A server killed with ``kill -9`` (or one that stops) closes its
session and its apps are free at once — no expiry to wait out, no clocks to agree on, nothing to
clean up, no write per heartbeat. The session is a dedicated connection (never the pool's) with
TCP keepalives on both ends, so a server whose machine vanishes is let go within ~15 s too. The
other side of the trade, a server whose session breaks while it keeps running, is handled where it
can be seen: every ``scan`` pings the session, and when it is gone every app it held is reported
lost, so the deployer stops driving them before anyone else can have taken them for long.

Each app is a lock key (a namespace and 32 bits of the app id's SHA-256). Two apps that share a
key are simply owned together. SQLite has one server, which owns every app (``SoleOwnership``).
"""

from __future__ import annotations

import hashlib
import logging
import threading

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.domain.deployments import TERMINAL, Phase
from shoal.domain.ports import Claims
from shoal.store.listener import conninfo
from shoal.store.tables import apps, deployments

log = logging.getLogger("shoal.store")

NAMESPACE = 0x5A0A1  # the first half of every shoal advisory lock key (objects of other users keep theirs)
_OPEN = [p.value for p in Phase if p not in TERMINAL]
# Server-side keepalives: PostgreSQL notices a vanished client (and frees its locks) in ~15 s.
_SESSION_OPTIONS = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=5"


def lock_key(app_id: str) -> int:
    return int.from_bytes(hashlib.sha256(app_id.encode()).digest()[:4], "big", signed=True)


def apps_with_work(engine: Engine) -> set[str]:
    """Apps that need an owner: one with an active deployment to keep up, or an unfinished one."""
    query = sa.union(sa.select(apps.c.id).where(apps.c.active_deployment_id.is_not(None)),
                     sa.select(deployments.c.app_id).where(deployments.c.phase.in_(_OPEN)))
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(query)}


class SoleOwnership:
    """One server on the database (SQLite): it owns every app; the first scan hands it all of them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._scanned = False

    def owns(self, app_id: str) -> bool:
        return True

    def claim(self, app_id: str) -> bool:
        return True

    def scan(self) -> Claims:
        if self._scanned:
            return Claims()
        self._scanned = True
        return Claims(gained=sorted(apps_with_work(self._engine)))

    def release(self, app_id: str) -> None:
        return None

    def close(self) -> None:
        return None


class AdvisoryOwnership:
    """Several servers on one PostgreSQL: an app is owned by the session holding its advisory lock."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._session: psycopg.Connection[tuple[object, ...]] | None = None
        self._keys: set[int] = set()  # lock keys this server's session holds
        self._apps: set[str] = set()  # apps reported as held (claimed or gained)
        self._lost: set[str] = set()  # held by a session that ended, not reported lost yet

    def owns(self, app_id: str) -> bool:
        return app_id in self._apps

    def claim(self, app_id: str) -> bool:
        with self._lock:
            try:
                return self._take(app_id)
            except psycopg.Error as exc:
                log.warning("could not claim app %s: %s", app_id, exc)
                self._drop_session()
                return False

    def scan(self) -> Claims:
        with self._lock:
            gained: list[str] = []
            try:
                self._connected().execute("SELECT 1")
                wanted = apps_with_work(self._engine) - self._apps
                gained = [a for a in sorted(wanted) if self._take(a)]
            except psycopg.Error as exc:
                self._drop_session()
                log.warning("the ownership session ended (%s): letting go of %d apps", exc, len(self._lost))
            except sa.exc.SQLAlchemyError as exc:
                log.warning("could not look for apps without an owner: %s", exc)
            lost, self._lost = sorted(self._lost), set()
            return Claims(gained=[a for a in gained if a not in lost], lost=lost)

    def release(self, app_id: str) -> None:
        with self._lock:
            self._apps.discard(app_id)
            key = lock_key(app_id)
            if self._session is None or key not in self._keys or any(lock_key(a) == key for a in self._apps):
                return
            try:
                self._session.execute("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, key))
                self._keys.discard(key)
            except psycopg.Error:
                self._drop_session()

    def close(self) -> None:
        with self._lock:
            self._drop_session()

    # -- the session -----------------------------------------------------------------------------

    def _take(self, app_id: str) -> bool:
        key = lock_key(app_id)
        if key not in self._keys:
            row = self._connected().execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, key)).fetchone()
            if not (row and row[0]):
                return False
            self._keys.add(key)
        self._apps.add(app_id)
        return True

    def _connected(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._session is None or self._session.closed:
            self._drop_session()
            self._session = psycopg.connect(conninfo(self._engine), autocommit=True, connect_timeout=5,
                                            keepalives=1, keepalives_idle=5, keepalives_interval=2,
                                            keepalives_count=3, options=_SESSION_OPTIONS,
                                            application_name="shoal-ownership")
        return self._session

    def _drop_session(self) -> None:
        """Close the session (freeing every lock it holds, if the database still sees it)."""
        session, self._session = self._session, None
        self._lost |= self._apps
        self._keys.clear()
        self._apps.clear()
        if session is not None:
            try:
                session.close()
            except psycopg.Error:
                pass
