"""What a deployment's containers are told: the local runtime's bindings, with container addresses.

The rules are the local runtime's (``runtime.local.bindings``: secrets decrypted only into an
instance's environment, ``${...}`` bindables resolved, dev databases provisioned on the embedded
PostgreSQL); only the addresses differ, as on DigitalOcean: a service is reached by its component's
name on the app's network at its own ``http_port`` (``${api.PRIVATE_URL}`` = ``http://api:8080``),
and a dev database through the app's forwarder on its network's gateway (``forwarder``).
"""

from __future__ import annotations

from shoal.core.secrets import SecretBox
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Kind, RunUnit
from shoal.runtime.container.forwarder import Forwarders
from shoal.runtime.local.bindings import Bindings, Clusters
from shoal.runtime.local.databases import DatabaseInfo, DevDatabases

_LOOPBACK = ("127.", "localhost", "::1")


class ContainerBindings(Bindings):
    def __init__(self, box: SecretBox | None, databases: DevDatabases, clusters: Clusters,
                 forwarders: Forwarders) -> None:
        super().__init__(box, databases, clusters)
        self.forwarders = forwarders
        self._forwarded: dict[tuple[str, str, int], tuple[str, int]] = {}  # (app, host, port) → reached at

    def private_address(self, unit: RunUnit, ports: list[int]) -> tuple[str, int | None]:
        return unit.name, unit.http_port or DEFAULT_HTTP_PORT

    def instance_ports(self, plan: AppPlan) -> dict[str, list[int]]:
        return {}  # every instance listens on its own http_port inside its container

    def database_address(self, app_id: str, info: DatabaseInfo) -> tuple[str, int]:
        return self._forwarded.get((app_id, info.host, info.port), (info.host, info.port))

    async def forward(self, plan: AppPlan, gateway: str, subnet: str) -> None:
        """Make the app's databases on this machine's loopback reachable from its network."""
        for unit in plan.units:
            info = self._db_info.get((plan.app_id, unit.name)) if unit.kind == Kind.DATABASE else None
            if info is None or not info.host.startswith(_LOOPBACK):
                continue
            key = (plan.app_id, info.host, info.port)
            if key not in self._forwarded:
                self._forwarded[key] = await self.forwarders.ensure(plan.app_id, gateway, subnet,
                                                                    (info.host, info.port))

    async def drop_app(self, app_id: str) -> None:
        await self.forwarders.drop_app(app_id)
        self._forwarded = {k: v for k, v in self._forwarded.items() if k[0] != app_id}
        await super().drop_app(app_id)

    async def close(self) -> None:
        await self.forwarders.close()
        await super().close()
