"""Opening the database: engine, connection settings, and schema migration on start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from shoal.core.errors import Unavailable
from shoal.store.accounts import SqlAccountStore
from shoal.store.alerts import SqlAlertStore, SqlScaleEventStore
from shoal.store.apps import SqlAppStore
from shoal.store.changes import ChangeFeed
from shoal.store.clusters import SqlClusterStore
from shoal.store.deployments import SqlDeploymentStore
from shoal.store.jobs import SqlJobStore
from shoal.store.listener import NOTIFY, Listener
from shoal.store.owners import AdvisoryOwnership, SoleOwnership
from shoal.store.traffic import SqlTrafficStore

_MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass
class Database:
    engine: Engine
    apps: SqlAppStore
    accounts: SqlAccountStore
    deployments: SqlDeploymentStore
    jobs: SqlJobStore
    changes: ChangeFeed
    clusters: SqlClusterStore
    traffic: SqlTrafficStore
    alerts: SqlAlertStore
    scale_events: SqlScaleEventStore
    ownership: AdvisoryOwnership | SoleOwnership
    listener: Listener | None = None

    @property
    def shared(self) -> bool:
        """Whether other servers may use this database too (PostgreSQL) or this is the only one (SQLite)."""
        return self.engine.dialect.name == "postgresql"

    def listen(self, mode: str = NOTIFY) -> None:
        """Hear other servers' writes (a server does; one-off commands write, and need not listen)."""
        if self.shared and self.listener is None:
            self.listener = Listener(self.engine, self.changes, mode)
            self.listener.start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.ownership.close()
        self.engine.dispose()


def _engine_url(url: str) -> str:
    # ``postgresql://`` would pick psycopg2; shoal ships psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL + synchronous=NORMAL: a committed transaction survives the process being killed
    # (only an OS crash could lose the last commits), and readers never block the writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str) -> Engine:
    full = _engine_url(url)
    if full.startswith("sqlite"):
        engine = sa.create_engine(full, connect_args={"check_same_thread": False}, pool_size=8, max_overflow=8)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return sa.create_engine(full, pool_size=8, max_overflow=8, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; a data dir from an older version upgrades here."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> Database:
    engine = create_engine(url)
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        raise Unavailable(f"cannot open the database at {engine.url.render_as_string(hide_password=True)}: "
                          f"{exc.orig}") from exc
    changes = ChangeFeed()
    shared = engine.dialect.name == "postgresql"
    return Database(engine=engine, apps=SqlAppStore(engine, changes), accounts=SqlAccountStore(engine, changes),
                    deployments=SqlDeploymentStore(engine, changes), jobs=SqlJobStore(engine), changes=changes,
                    clusters=SqlClusterStore(engine), traffic=SqlTrafficStore(engine),
                    ownership=AdvisoryOwnership(engine) if shared else SoleOwnership(engine),
                    alerts=SqlAlertStore(engine), scale_events=SqlScaleEventStore(engine))
