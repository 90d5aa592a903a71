"""One network per app: created once, isolated (the engine's option and shoal's own firewall rules).

Role: give the runtime an app's network — its name, its gateway and subnet (where the database
forwarder listens and whom it admits), and its host bridge — and keep the app's isolation rules in
force (``isolation``) each time something is about to start on it; remove both with the app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shoal.runtime.container import containers, isolation
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.specs import network_name

log = logging.getLogger("shoal.runtime.container")


@dataclass(frozen=True)
class Network:
    name: str
    gateway: str
    subnet: str
    bridge: str | None


class Networks:
    def __init__(self, access: EngineAccess) -> None:
        self._access = access
        self._by_app: dict[str, Network] = {}
        self._problem: str | None = None  # why isolation rules cannot be kept (said once)

    async def ensure(self, app_id: str) -> Network:
        """The app's network, with its isolation rules asserted now (other tools rewrite firewalls)."""
        engine = await self._access.ready()
        found = self._by_app.get(app_id)
        if found is None:
            name = network_name(engine.owner, app_id)
            await self._access.call(containers.ensure_network, name, engine.labels(app=app_id))
            gateway, subnet = await self._access.call(containers.network_address, name)
            found = self._by_app[app_id] = Network(name, gateway, subnet,
                                                   await self._access.call(containers.bridge_of, name))
        if found.bridge:
            problem = await self._access.run(isolation.isolate, found.bridge, isolation.tag(engine.owner, found.name))
            if problem and problem != self._problem:
                log.warning("cannot enforce isolation of %s: %s (relying on the engine's)", found.name, problem)
            self._problem = problem
        return found

    async def remove(self, app_id: str) -> None:
        """Its firewall rules go (the network itself goes with the app's labelled objects)."""
        self._by_app.pop(app_id, None)
        if self._access.opened:
            engine = await self._access.ready()
            await self._access.run(isolation.release, isolation.tag(engine.owner, network_name(engine.owner, app_id)))
