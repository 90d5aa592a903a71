"""The app's databases as godo reaches them: connection details, a password reset, trusted sources.

``GET /v2/apps/{id}/database_connection_details``, ``POST .../components/{name}/reset_password`` and
``POST .../components/{name}/trusted_sources`` (godo ``GetAppDatabaseConnectionDetails``,
``ResetDatabasePassword``, ``ToggleDatabaseTrustedSource``). What the databases are is the app's
spec; where they are and their passwords is the runtime's, which provisioned them.
"""

from __future__ import annotations

import asyncio

from shoal.core.errors import BadRequest, NotFound
from shoal.domain.accounts import Account
from shoal.domain.apps import App
from shoal.domain.deployments import Deployment
from shoal.domain.plan import Kind, RunUnit, units_of
from shoal.domain.ports import DatabaseConnection, Runtime
from shoal.engine.apps import refuse_if_pinned
from shoal.engine.deployments import DeploymentsService

RESET_ACTION = "RESET_DATABASE_PASSWORD"  # godo's DeploymentCauseDetailsDigitalOceanUserActionName


class DatabasesService:
    def __init__(self, deployments: DeploymentsService, runtime: Runtime | None) -> None:
        self._deployments = deployments
        self._runtime = runtime

    def connection_details(self, account: Account, app_id: str) -> list[DatabaseConnection]:
        """The app's databases of its spec that a deployment provisioned (a new one has none yet)."""
        app = self._deployments.app(account, app_id)
        named = {u.name for u in units_of(app.spec) if u.kind == Kind.DATABASE}
        found = self._runtime.database_connections(app.id) if self._runtime else []
        return [c for c in found if c.component in named]

    async def reset_password(self, account: Account, app_id: str, component: str) -> Deployment:
        """A new password for a dev database, in force at once, then a deployment that gives it to the
        app's components: until that deployment is live, the running ones hold a password that no longer
        works (their open connections stay; new ones are refused)."""
        app = await asyncio.to_thread(self._deployments.app, account, app_id)
        refuse_if_pinned(app)  # before the reset: a password changed without its deployment strands the app
        unit = _database(app, component)
        assert unit.database is not None
        if unit.database.production or unit.database.cluster_name:
            raise BadRequest(f"database {component} is a production cluster ({unit.database.cluster_name or 'unnamed'}): "
                             "its passwords are managed where the cluster runs, not by the app")
        if self._runtime is None:
            raise BadRequest("this server runs no runtime, so it keeps no database passwords")
        await self._runtime.reset_database_password(app.id, component)
        return await asyncio.to_thread(self._deployments.create_deployment, account, app.id, False,
                                       "database password reset", RESET_ACTION)

    def trusted_sources(self, account: Account, app_id: str, component: str, enable: bool) -> bool:
        """Whether only the app may connect: always so for a dev database here, which listens on this
        host's loopback only and admits the app's own role only; it cannot be opened to everyone."""
        app = self._deployments.app(account, app_id)
        unit = _database(app, component)
        assert unit.database is not None
        if unit.database.production or unit.database.cluster_name:
            raise BadRequest(f"database {component} is a production cluster: its trusted sources are set on the "
                             "cluster itself")
        if not enable:
            raise BadRequest(f"database {component}: a dev database here accepts only the app's own role from this "
                             "host, and cannot be opened to other sources; trusted sources stay enabled")
        return True


def _database(app: App, component: str) -> RunUnit:
    unit = next((u for u in units_of(app.spec) if u.name == component), None)
    if unit is None:
        raise NotFound(f"component {component!r} not found in app {app.id}")
    if unit.kind != Kind.DATABASE or unit.database is None:
        raise BadRequest(f"{component} is a {unit.kind.value.replace('_', ' ')}, not a database")
    return unit
