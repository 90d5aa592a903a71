"""The change feed on a real (embedded) PostgreSQL: two ``Database``s on one database are two servers."""

from __future__ import annotations

import threading
import uuid
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.core.errors import Conflict
from shoal.domain.apps import App
from shoal.domain.changes import APP, EVERYTHING, TOKEN, Change
from shoal.store import Database, open_database
from tests.conftest import postgres_database, unique_name


class Heard:
    """What one server's subscribers were told, to wait on from the test's thread."""

    def __init__(self, database: Database) -> None:
        self.changes: list[Change] = []
        self._cond = threading.Condition()
        database.changes.subscribe(self._hear)

    def _hear(self, change: Change) -> None:
        with self._cond:
            self.changes.append(change)
            self._cond.notify_all()

    def wait(self, wanted: Change, timeout: float = 10) -> float:
        start = time.monotonic()
        with self._cond:
            if not self._cond.wait_for(lambda: wanted in self.changes, timeout):
                raise AssertionError(f"{wanted} not heard within {timeout}s; heard {self.changes}")
        return time.monotonic() - start


@pytest.fixture
def url(postgres: Any) -> str:
    return postgres_database(postgres)


@pytest.fixture
def servers(url: str) -> Iterator[tuple[Database, Database]]:
    pair = (open_database(url), open_database(url))
    yield pair
    for database in pair:
        database.close()


def new_app(database: Database, name: str | None = None) -> App:
    account = database.accounts.ensure_account("admin", "admin@shoal.local")
    now = datetime.now(UTC)
    name = name or unique_name()
    app = App(id=str(uuid.uuid4()), account_id=account.id, name=name, spec={"name": name},
              region="ams", ingress_host=f"{name}.localhost", tier_slug="basic", project_id=account.id,
              created_at=now, updated_at=now, last_deployment_created_at=now)
    database.apps.insert_app(app)
    return app


def listening(database: Database, mode: str = "notify") -> Heard:
    heard = Heard(database)
    database.listen(mode)
    assert database.listener is not None
    if mode == "notify":
        assert database.listener.listening.wait(10)
    return heard


def test_another_servers_writes_are_heard_and_ones_own_once(servers: tuple[Database, Database]) -> None:
    a, b = servers
    heard_a, heard_b = listening(a), listening(b)
    app = new_app(a)
    took = heard_b.wait(Change(APP, app.id, local=False))
    assert Change(APP, app.id, local=True) in heard_a.changes
    a.apps.set_pins(app.id, {"pinned_deployment_id": None})
    heard_b.wait(Change(APP, app.id, local=False))
    time.sleep(0.3)  # a's own notification has come back to it by now, and was not delivered twice
    assert Change(APP, app.id, local=False) not in heard_a.changes
    assert took < 5


def test_a_token_revoked_through_one_server_is_heard_by_the_other(servers: tuple[Database, Database]) -> None:
    from shoal.engine.accounts import AccountsService
    from shoal.core.clock import SystemClock

    a, b = servers
    heard_b = listening(b)
    issued = AccountsService(a.accounts, SystemClock()).create_token("admin", scopes=[])
    heard_b.wait(Change(TOKEN, issued.token.id, local=False))
    heard_b.changes.clear()
    AccountsService(a.accounts, SystemClock()).revoke_token(issued.token.id[:8])  # as `shoal token revoke`
    heard_b.wait(Change(TOKEN, issued.token.id, local=False))


def test_a_write_that_rolls_back_announces_nothing(servers: tuple[Database, Database]) -> None:
    a, b = servers
    heard_a, heard_b = listening(a), listening(b)
    first = new_app(a)
    heard_b.wait(Change(APP, first.id, local=False))
    with pytest.raises(Conflict):
        new_app(a, name=first.name)  # the unique name refuses it: the transaction rolls back
    marker = new_app(a)
    heard_b.wait(Change(APP, marker.id, local=False))
    apps_heard = [c.key for c in heard_b.changes if c.kind == APP]
    assert apps_heard == [first.id, marker.id]
    assert [c.key for c in heard_a.changes if c.kind == APP] == [first.id, marker.id]


def test_the_poll_hears_changes_without_listen(servers: tuple[Database, Database]) -> None:
    a, b = servers
    heard_b = listening(b, mode="poll")
    time.sleep(1.5)  # the poll's first look is its baseline
    app = new_app(a)
    heard_b.wait(Change(APP, app.id, local=False))
    a.apps.delete_app(app.account_id, app.id)
    heard_b.changes.clear()
    heard_b.wait(Change(APP, app.id, local=False))


def test_a_lost_listen_connection_reconnects_and_says_everything_may_have_changed(
        servers: tuple[Database, Database]) -> None:
    a, b = servers
    heard_b = listening(b)
    with a.engine.begin() as conn:  # the database ends b's listening session (a restart, a network cut)
        conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = 'shoal-changes' AND datname = current_database()")
    heard_b.changes.clear()
    heard_b.wait(Change(EVERYTHING, local=False), timeout=20)
    app = new_app(a)
    heard_b.wait(Change(APP, app.id, local=False))


def test_sqlite_has_one_server_and_no_listener(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'shoal.db'}")
    try:
        heard = Heard(database)
        database.listen()
        assert database.listener is None and not database.shared
        app = new_app(database)
        assert heard.changes == [Change(APP, app.id, local=True)]
    finally:
        database.close()
