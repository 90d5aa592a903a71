"""Dev databases on the embedded PostgreSQL, reached over TCP like an app would."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from shoal.runtime.local.databases import DatabaseInfo, DevDatabases, identifier

pytestmark = pytest.mark.postgres
T = TypeVar("T")


class Harness:
    """One DevDatabases (one server) for the module, driven from one event loop."""

    def __init__(self, runner: asyncio.Runner, dbs: DevDatabases) -> None:
        self.runner, self.dbs = runner, dbs

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(asyncio.wait_for(coro, 60))

    def provision(self, app_id: str, name: str = "db", db_name: str | None = None, db_user: str | None = None,
                  version: str | None = None) -> DatabaseInfo:
        return self.run(self.dbs.provision(app_id, name, db_name, db_user, version))


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with asyncio.Runner() as runner:
        dbs = DevDatabases(tmp_path_factory.mktemp("devdb"))
        yield Harness(runner, dbs)
        runner.run(dbs.close())


def new_app() -> str:
    return str(uuid.uuid4())


def connect(info: DatabaseInfo, database: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(host=info.host, port=info.port, user=info.user, password=info.password,
                           dbname=database or info.database, autocommit=True, connect_timeout=5)


def test_provisioned_database_is_usable_over_tcp(pg: Harness) -> None:
    info = pg.provision(new_app(), version="16")
    assert (info.host, info.engine, info.version_served, info.warning) == ("127.0.0.1", "PG", "16", None)
    with connect(info) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes (body) VALUES (%s)", ["hello"])
        assert conn.execute("SELECT body FROM notes").fetchall() == [("hello",)]
        assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)


def test_provision_is_idempotent(pg: Harness) -> None:
    app = new_app()
    first = pg.provision(app, "db", version=None)
    with connect(first) as conn:
        conn.execute("CREATE TABLE kept (x int)")
    again = pg.provision(app, "db", version=None)
    assert again == first
    with connect(again) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


def test_other_major_version_is_served_with_a_warning(pg: Harness) -> None:
    info = pg.provision(new_app(), version="14")
    assert info.version_served == "16"
    assert info.warning is not None and "14" in info.warning and "16." in info.warning
    with connect(info) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_apps_are_isolated(pg: Harness) -> None:
    first, second = pg.provision(new_app()), pg.provision(new_app())
    assert first.database != second.database and first.user != second.user and first.password != second.password
    with connect(first) as conn:
        conn.execute("CREATE TABLE secret (x int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect(second, database=first.database)
    for shared in ("postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            connect(second, database=shared)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=first.host, port=first.port, user=first.user, password="wrong", dbname=first.database)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=first.host, port=first.port, user="postgres", dbname="postgres", connect_timeout=5)


def test_spec_names_are_honoured_then_suffixed_per_app(pg: Harness) -> None:
    first = pg.provision(new_app(), "db", db_name="shop", db_user="shopper")
    assert (first.database, first.user) == ("shop", "shopper")
    second = pg.provision(new_app(), "db", db_name="shop", db_user="shopper")
    assert second.database.startswith("shop_") and second.user.startswith("shopper_")
    with connect(second) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (second.database, second.user)


def test_two_databases_of_one_app(pg: Harness) -> None:
    app = new_app()
    one, two = pg.provision(app, "orders", db_name="same"), pg.provision(app, "users", db_name="same")
    assert one.database != two.database and one.user != two.user


@pytest.mark.parametrize(("text", "expected"), [
    ("db", "db"), ("My-DB.v2", "my_db_v2"), ("2fast", "db_2fast"), ("pg_stat", "db_pg_stat"), ("---", "db"),
    ("x" * 80, "x" * 63),
])
def test_identifier(text: str, expected: str) -> None:
    assert identifier(text) == expected


def test_drop_app_removes_every_database_of_the_app(pg: Harness) -> None:
    app, bystander = new_app(), pg.provision(new_app())
    infos = [pg.provision(app, name) for name in ("a", "b", "c")]
    held = connect(infos[0])  # an open session must not block the drop
    pg.run(pg.dbs.drop_app(app))
    assert held.closed or held.broken or _dead(held)
    for info in infos:
        with pytest.raises(psycopg.OperationalError):
            connect(info)
    with connect(bystander) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    again = pg.provision(app, "a")  # and it can come back, empty
    with connect(again) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_data_and_port_survive_close_and_reopen(tmp_path: Path) -> None:
    app = new_app()

    async def write() -> DatabaseInfo:
        dbs = DevDatabases(tmp_path)
        info = await dbs.provision(app, "db", None, None, None)
        with connect(info) as conn:
            conn.execute("CREATE TABLE t (v text)")
            conn.execute("INSERT INTO t VALUES ('kept')")
        await dbs.close()
        return info

    async def read() -> tuple[DatabaseInfo, list[tuple[Any, ...]]]:
        dbs = DevDatabases(tmp_path)
        try:
            info = await dbs.provision(app, "db", None, None, None)
            with connect(info) as conn:
                return info, conn.execute("SELECT v FROM t").fetchall()
        finally:
            await dbs.close()

    before = asyncio.run(write())
    with pytest.raises(psycopg.OperationalError):
        connect(before)  # close() stopped the server it started
    after, rows = asyncio.run(read())
    assert rows == [("kept",)]
    assert after == before
    assert json.loads((tmp_path / "server.json").read_text()) == {"port": before.port}
    assert (tmp_path / "databases.key").stat().st_mode & 0o777 == 0o600


def test_drop_before_anything_exists_does_not_start_a_server(tmp_path: Path) -> None:
    dbs = DevDatabases(tmp_path)
    asyncio.run(dbs.drop_app(new_app()))
    assert not (tmp_path / "pgdata").exists()


def _dead(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_a_password_reset_is_in_force_at_once_and_survives_a_restart(pg: Harness, tmp_path: Path) -> None:
    app = new_app()
    before = pg.provision(app, "main")
    with connect(before) as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    new = pg.run(pg.dbs.reset_password(app, "main"))
    assert new != before.password
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(before).close()
    after = pg.provision(app, "main")  # the next deployment's provision keeps the reset password
    assert after.password == new and after.database == before.database
    with connect(after) as conn:
        assert conn.execute("SELECT id FROM kept").fetchall() == [(7,)]
    # Another DevDatabases on the same root (shoal restarted) derives the same password.
    assert pg.dbs._password(app, "main") == DevDatabases(pg.dbs._root)._password(app, "main") == new
    # Other databases keep theirs; deleting the app forgets its resets.
    other = pg.provision(app, "other")
    assert pg.provision(app, "other").password == other.password
    pg.run(pg.dbs.drop_app(app))
    assert pg.provision(app, "main").password == before.password
    pg.run(pg.dbs.drop_app(app))


def test_resetting_a_database_never_provisioned_is_not_found(pg: Harness) -> None:
    from shoal.core.errors import NotFound

    pg.provision(new_app())  # the server runs
    with pytest.raises(NotFound, match="has not been created yet"):
        pg.run(pg.dbs.reset_password(new_app(), "db"))
