"""One owner per app: advisory locks on a real (embedded) PostgreSQL, two ``Database``s as two servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.core.clock import SystemClock
from shoal.domain.accounts import Account
from shoal.engine.apps import AppsService
from shoal.store import Database, open_database
from shoal.store.owners import AdvisoryOwnership, SoleOwnership
from tests.conftest import postgres_database, service_spec, unique_name


@pytest.fixture
def servers(postgres: Any) -> Iterator[tuple[Database, Database]]:
    url = postgres_database(postgres)
    pair = (open_database(url), open_database(url))
    yield pair
    for database in pair:
        database.close()


def create_app(database: Database) -> str:
    """An app with its first deployment (unfinished: nobody drives it here), as the API makes it."""
    account: Account = database.accounts.ensure_account("admin", "admin@shoal.local")
    apps = AppsService(database.apps, database.deployments, SystemClock(), "localhost")
    return apps.create_app(account, service_spec(unique_name())).app.id


def test_an_app_has_one_owner_and_is_free_again_when_its_owner_closes(servers: tuple[Database, Database]) -> None:
    a, b = servers
    assert isinstance(a.ownership, AdvisoryOwnership) and isinstance(b.ownership, AdvisoryOwnership)
    first, second = create_app(a), create_app(a)
    assert a.ownership.claim(first)
    assert not b.ownership.claim(first)
    assert b.ownership.scan().gained == [second]  # the one nobody holds
    assert a.ownership.scan().gained == []  # the other is b's
    assert a.ownership.owns(first) and not a.ownership.owns(second)
    assert b.ownership.owns(second) and not b.ownership.owns(first)

    a.ownership.close()  # a stops (or dies): its session ends, its locks with it
    assert b.ownership.scan().gained == [first]
    assert b.ownership.claim(first)  # a claim of an app already held is a yes


def test_a_server_whose_session_ends_hears_that_it_lost_its_apps(servers: tuple[Database, Database]) -> None:
    a, b = servers
    app_id = create_app(a)
    assert a.ownership.scan().gained == [app_id]
    with b.engine.begin() as conn:  # the database ends a's session (a network cut, a restart)
        conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = 'shoal-ownership' AND datname = current_database()")
    assert b.ownership.scan().gained == [app_id]
    claims = a.ownership.scan()
    assert claims.lost == [app_id] and claims.gained == []
    assert not a.ownership.owns(app_id)
    assert not a.ownership.claim(app_id)


def test_a_deleted_app_is_released(servers: tuple[Database, Database]) -> None:
    a, b = servers
    app_id = create_app(a)
    assert a.ownership.claim(app_id)
    a.ownership.release(app_id)
    assert not a.ownership.owns(app_id)
    assert b.ownership.claim(app_id)


def test_on_sqlite_the_one_server_owns_every_app(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'shoal.db'}")
    try:
        assert isinstance(database.ownership, SoleOwnership)
        app_id = create_app(database)
        assert database.ownership.scan().gained == [app_id]  # the first look hands it everything
        assert database.ownership.scan().gained == []
        assert database.ownership.owns("any") and database.ownership.claim("any")
    finally:
        database.close()
