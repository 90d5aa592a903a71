"""Apps in SQL: one transaction per write; the unique (account, name) constraint backs the 409."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.core.errors import Conflict
from shoal.domain.apps import App, Page
from shoal.domain.deployments import Deployment
from shoal.domain.changes import APP
from shoal.store.changes import ChangeFeed
from shoal.store.deployments import insert_deployment
from shoal.store.tables import apps


def _app(row: Any) -> App:
    return App(id=row.id, account_id=row.account_id, name=row.name, spec=row.spec, region=row.region,
               ingress_host=row.ingress_host, tier_slug=row.tier_slug, project_id=row.project_id,
               created_at=row.created_at, updated_at=row.updated_at,
               last_deployment_created_at=row.last_deployment_created_at,
               last_deployment_active_at=row.last_deployment_active_at,
               active_deployment_id=row.active_deployment_id, pinned_deployment_id=row.pinned_deployment_id,
               rollback_base_deployment_id=row.rollback_base_deployment_id, revision=row.revision,
               build_config=row.build_config)


class SqlAppStore:
    def __init__(self, engine: Engine, changes: ChangeFeed) -> None:
        self._engine = engine
        self.changes = changes

    def insert_app(self, app: App, deployment: Deployment | None = None) -> None:
        """The app and its first deployment, together or not at all."""
        try:
            with self.changes.changing(self._engine, APP, app.id) as conn:
                conn.execute(apps.insert().values(
                    id=app.id, account_id=app.account_id, name=app.name, spec=app.spec, region=app.region,
                    ingress_host=app.ingress_host, tier_slug=app.tier_slug, project_id=app.project_id,
                    created_at=app.created_at, updated_at=app.updated_at,
                    last_deployment_created_at=app.last_deployment_created_at,
                    last_deployment_active_at=app.last_deployment_active_at))
                if deployment is not None:
                    insert_deployment(conn, deployment, app.created_at)
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"an app with the name {app.name!r} already exists") from exc

    def get_app(self, account_id: str, app_id: str) -> App | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.id == app_id, apps.c.account_id == account_id)).first()
        return _app(row) if row else None

    def get_app_by_name(self, account_id: str, name: str) -> App | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(apps).where(apps.c.name == name, apps.c.account_id == account_id)).first()
        return _app(row) if row else None

    def list_apps(self, account_id: str, offset: int, limit: int) -> Page:
        # Oldest first: apps created while a client pages through the list land on later pages
        # instead of shifting the ones it has not read yet.
        query = (sa.select(apps).where(apps.c.account_id == account_id)
                 .order_by(apps.c.created_at, apps.c.id).offset(offset).limit(limit))
        count = sa.select(sa.func.count()).select_from(apps).where(apps.c.account_id == account_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            total = int(conn.execute(count).scalar_one())
        return Page(items=[_app(r) for r in rows], total=total)

    def update_app_spec(self, account_id: str, app_id: str, spec: dict[str, Any], region: str,
                        updated_at: datetime, deployment: Deployment | None = None,
                        pins: dict[str, str | None] | None = None) -> App | None:
        """New spec (and the deployment it causes, and rollback pins) in one transaction."""
        try:
            with self.changes.changing(self._engine, APP, app_id) as conn:
                result = conn.execute(apps.update()
                                      .where(apps.c.id == app_id, apps.c.account_id == account_id)
                                      .values(spec=spec, name=spec["name"], region=region, updated_at=updated_at,
                                              revision=apps.c.revision + 1, **(pins or {})))
                if result.rowcount == 0:
                    return None
                if deployment is not None:
                    insert_deployment(conn, deployment, updated_at)
                row = conn.execute(sa.select(apps).where(apps.c.id == app_id)).one()
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"an app with the name {spec['name']!r} already exists") from exc
        return _app(row)

    def set_build_config(self, app_id: str, build_config: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(apps.update().where(apps.c.id == app_id)
                         .values(build_config=build_config, revision=apps.c.revision + 1))
        self.changes.emit(app_id)

    def delete_app(self, account_id: str, app_id: str) -> bool:
        with self.changes.changing(self._engine, APP, app_id) as conn:
            result = conn.execute(apps.delete().where(apps.c.id == app_id, apps.c.account_id == account_id))
        return bool(result.rowcount)

    def app_names(self, account_id: str, prefix: str) -> set[str]:
        query = sa.select(apps.c.name).where(apps.c.account_id == account_id,
                                             apps.c.name.startswith(prefix, autoescape=True))
        with self._engine.connect() as conn:
            return {row.name for row in conn.execute(query)}

    def set_pins(self, app_id: str, pins: dict[str, str | None]) -> None:
        with self.changes.changing(self._engine, APP, app_id) as conn:
            conn.execute(apps.update().where(apps.c.id == app_id).values(revision=apps.c.revision + 1, **pins))
