"""The store on SQLite: migrations, the unique name, isolation by account."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from shoal.core.errors import Conflict
from shoal.domain.apps import App
from shoal.domain.traffic import TrafficMeter
from shoal.store import open_database


def _app(account_id: str, name: str, app_id: str) -> App:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return App(id=app_id, account_id=account_id, name=name, spec={"name": name}, region="nyc",
               ingress_host=f"{name}-abcde.localhost", tier_slug="basic", project_id="p", created_at=now,
               updated_at=now)


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from shoal.store.database import _MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_a_data_dir_from_the_first_schema_upgrades_with_its_apps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    old = sa.create_engine(url)
    _upgrade_to(old, "0001")
    with old.begin() as conn:
        conn.execute(sa.text("insert into accounts values ('acct', 'admin', 'a@x', '2026-01-01 00:00:00')"))
        conn.execute(sa.text(
            "insert into apps (id, account_id, name, spec, region, ingress_host, tier_slug, project_id, created_at, "
            "updated_at) values ('00000000-0000-4000-8000-000000000009', 'acct', 'old', '{\"name\": \"old\"}', "
            "'ams', 'old-abcde.localhost', 'basic', 'p', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    old.dispose()
    db = open_database(url)
    app = db.apps.get_app("acct", "00000000-0000-4000-8000-000000000009")
    assert app is not None and app.spec == {"name": "old"} and app.active_deployment_id is None
    with db.engine.connect() as conn:
        head = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    db.close()
    db = open_database(url)  # a second start upgrades nothing and loses nothing
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar_one() == head
    assert db.apps.get_app("acct", "00000000-0000-4000-8000-000000000009") is not None
    db.close()


def test_unique_name_per_account_and_isolation(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'state.db'}")
    alice = db.accounts.ensure_account("alice", "a@x")
    bob = db.accounts.ensure_account("bob", "b@x")
    db.apps.insert_app(_app(alice.id, "web", "00000000-0000-4000-8000-000000000001"))
    with pytest.raises(Conflict):
        db.apps.insert_app(_app(alice.id, "web", "00000000-0000-4000-8000-000000000002"))
    db.apps.insert_app(_app(bob.id, "web", "00000000-0000-4000-8000-000000000003"))
    assert db.apps.get_app(bob.id, "00000000-0000-4000-8000-000000000001") is None
    assert db.apps.list_apps(alice.id, 0, 10).total == 1
    loaded = db.apps.get_app(alice.id, "00000000-0000-4000-8000-000000000001")
    assert loaded is not None and loaded.created_at.tzinfo is not None
    db.close()


def test_a_data_dir_from_0004_gains_the_traffic_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    old = sa.create_engine(url)
    _upgrade_to(old, "0004")
    old.dispose()
    db = open_database(url)
    account = db.accounts.ensure_account("alice", "a@x")
    db.apps.insert_app(_app(account.id, "web", "00000000-0000-4000-8000-000000000001"))
    meter = TrafficMeter()
    meter.record("00000000-0000-4000-8000-000000000001", "site", date(2026, 1, 1), 200, 42, 0.1)
    db.traffic.add_traffic(meter.take())
    assert db.traffic.bytes_out(["00000000-0000-4000-8000-000000000001"], date(2026, 1, 1)) == {
        "00000000-0000-4000-8000-000000000001": 42}
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar_one() == _head()
    db.close()


def _head() -> str:
    """The newest revision (helpers add theirs; the lead re-links the chain)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from shoal.store.database import _MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def test_a_data_dir_from_0005_gains_the_alert_firings_table(tmp_path: Path) -> None:
    from shoal.domain.alerts import Delivery, Firing

    url = f"sqlite:///{tmp_path / 'state.db'}"
    old = sa.create_engine(url)
    _upgrade_to(old, "0005")
    old.dispose()
    db = open_database(url)
    account = db.accounts.ensure_account("alice", "a@x")
    db.apps.insert_app(_app(account.id, "web", "00000000-0000-4000-8000-000000000001"))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    firing = Firing(id="f1", alert_id="a1", app_id="00000000-0000-4000-8000-000000000001", component="",
                    rule="DEPLOYMENT_FAILED", subject="d1", fired_at=now, title="t", text="x",
                    deliveries=(Delivery("email", "ops@example.com"),))
    assert db.alerts.record_firing(firing) and not db.alerts.record_firing(firing)  # once per id
    assert [f.id for f in db.alerts.due_firings(now)] == ["f1"]
    assert db.alerts.latest_firings("00000000-0000-4000-8000-000000000001")["a1"].deliveries == firing.deliveries
    db.close()
