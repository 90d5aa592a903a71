"""A batch of log lines whose app is deleted while the batch is being written: only that app's
lines are dropped, every other deployment's lines are stored (on the real SQLite store).

The delete is made to land exactly between the store's check of which deployments still exist and
its insert, by a SQLAlchemy hook on the insert statement: the race a busy server hits by chance.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shoal.domain.accounts import Account
from shoal.domain.apps import App
from shoal.domain.deployments import Trigger
from shoal.domain.logs import LogLine
from shoal.engine.new_deployments import new_deployment
from shoal.store import open_database

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _app_with_deployment(db: Any, account: Account, name: str) -> tuple[App, str]:
    app = App(id=f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}", account_id=account.id, name=name,
              spec={"name": name}, region="nyc", ingress_host=f"{name}.localhost", tier_slug="basic", project_id="p",
              created_at=NOW, updated_at=NOW)
    dep = new_deployment(app, {"name": name}, Trigger("test"), account, NOW, "basic")
    db.apps.insert_app(app, dep)
    return app, dep.id


def test_a_deleted_apps_lines_are_dropped_and_the_rest_of_the_batch_is_kept(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'shoal.db'}")
    account = db.accounts.ensure_account("admin", "")
    doomed, doomed_dep = _app_with_deployment(db, account, "doomed")
    _, kept_dep = _app_with_deployment(db, account, "kept")
    _, other_dep = _app_with_deployment(db, account, "other")
    deleted: list[bool] = []

    def delete_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DEPLOYMENT_LOGS") and not deleted:
            deleted.append(db.apps.delete_app(account.id, doomed.id))  # another connection, committed now

    sa.event.listen(db.engine, "before_cursor_execute", delete_first)
    batch = [LogLine(dep, "RUN", "web", NOW, f"line {i} of {dep}")
             for i in range(20) for dep in (doomed_dep, kept_dep, other_dep)]
    db.deployments.append_logs(batch)
    sa.event.remove(db.engine, "before_cursor_execute", delete_first)
    assert deleted == [True]
    for dep in (kept_dep, other_dep):
        lines = [line.line for _, line in db.deployments.read_logs(dep, {"RUN"})]
        assert lines == [f"line {i} of {dep}" for i in range(20)]
    assert db.deployments.read_logs(doomed_dep, {"RUN"}) == []
    db.close()
