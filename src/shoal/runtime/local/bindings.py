"""What a deployment's processes are told: the ports of every instance, their databases, the
bindable variables of the app, and the plaintext of its secrets (decrypted here only, into the
environments of the processes that need them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from shoal.core.errors import InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted
from shoal.domain.bindables import (BindContext, database_variables, resolve, routed_variables, service_variables,
                                    worker_variables)
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import Component, components
from shoal.domain.ports import DeployTarget, LogSink
from shoal.domain.routing import routes_for
from shoal.runtime.local.databases import DatabaseInfo, DevDatabases
from shoal.runtime.local.environment import ValueOf, plain_value
from shoal.runtime.local.ports import allocate

DEFAULT_HTTP_PORT = 8080
Clusters = Callable[[str], tuple[str, str] | None]


class Bindings:
    def __init__(self, box: SecretBox | None, databases: DevDatabases, clusters: Clusters) -> None:
        self._box = box
        self._databases = databases
        self._clusters = clusters  # registered cluster name → (engine, URL)
        self._db_info: dict[tuple[str, str], DatabaseInfo] = {}
        self._db_urls: dict[tuple[str, str], str] = {}  # production databases: the cluster's own URL
        self._ports: dict[str, dict[str, list[int]]] = {}  # deployment → service → its instances' ports

    def value_of(self, target: DeployTarget, self_name: str, build_time: bool) -> ValueOf:
        """Final values: secrets decrypted (only ever into a process's environment), bindables resolved."""
        ctx = self.context(target)

        def value(var: Mapping[str, Any]) -> str:
            raw = plain_value(var)
            if var.get("type") == "SECRET" and self._box is not None and is_encrypted(raw):
                try:
                    raw = self._box.decrypt(target.account_id, raw)
                except InvalidArgument as exc:
                    raise StepFailed("InternalError", f"{self_name}: secret {var.get('key')} cannot be "
                                                      f"decrypted ({exc.message})") from exc
            return resolve(raw, ctx, self_name, build_time)

        return value

    def context(self, target: DeployTarget) -> BindContext:
        domain = target.app_url.split("://", 1)[-1].split("/", 1)[0]
        route_of = {r.component: r.prefix for r in reversed(routes_for(target.spec)) if r.component}
        ports = self.instance_ports(target)
        commits = target.commits or {}
        variables: dict[str, dict[str, str]] = {}
        for part in components(target.spec):
            commit, route = commits.get(part.name), route_of.get(part.name)
            if part.kind == "service":
                own: list[int | None] = [*ports.get(part.name, []), None]
                variables[part.name] = service_variables(
                    part.name, part.spec.get("http_port"), list(part.spec.get("internal_ports") or []),
                    target.app_url if route else None, route, commit, "127.0.0.1", own[0])
            elif part.kind in ("static_site", "function"):
                variables[part.name] = routed_variables(target.app_url if route else None, route, commit)
            elif part.kind != "database":
                variables[part.name] = worker_variables(commit)
        databases = {name: database_variables(i.host, i.port, i.user, i.password, i.database, i.engine)
                     for (app_id, name), i in self._db_info.items() if app_id == target.app_id}
        for (app_id, name), url in self._db_urls.items():
            if app_id == target.app_id:
                databases[name]["DATABASE_URL"] = url
        return BindContext(app={"APP_URL": target.app_url, "APP_DOMAIN": domain, "APP_ID": target.app_id},
                           components=variables, databases=databases)

    def instance_ports(self, target: DeployTarget) -> dict[str, list[int]]:
        """Ports of every service instance of the deployment, chosen once up front so that
        ``${api.PRIVATE_URL}`` is known to a component that starts before ``api`` does."""
        planned = self._ports.get(target.deployment_id)
        if planned is None:
            taken = self.taken_ports()
            planned = {}
            for part in components(target.spec):
                if part.kind != "service":
                    continue
                count = int(part.spec.get("instance_count") or
                            (part.spec.get("autoscaling") or {}).get("min_instance_count") or 1)
                wanted = int(part.spec.get("http_port") or DEFAULT_HTTP_PORT)
                planned[part.name] = []
                for i in range(count):
                    port = allocate(wanted if i == 0 else None, taken)
                    taken.add(port)
                    planned[part.name].append(port)
            self._ports[target.deployment_id] = planned
        return planned

    def taken_ports(self) -> set[int]:
        return {port for plan in self._ports.values() for ports in plan.values() for port in ports}

    async def provision(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        spec = component.spec
        if spec.get("production") or spec.get("cluster_name"):
            self._bind_cluster(target, component, log)
            return
        info = await self._databases.provision(target.app_id, component.name, spec.get("db_name"),
                                               spec.get("db_user"), spec.get("version"))
        self._db_info[(target.app_id, component.name)] = info
        log("DEPLOY", component.name, f"dev database {info.database} ready at {info.host}:{info.port} "
                                      f"(PostgreSQL {info.version_served})")
        if info.warning:
            log("DEPLOY", component.name, f"warning: {info.warning}")

    def _bind_cluster(self, target: DeployTarget, component: Component, log: LogSink) -> None:
        """A production database binds to a cluster the operator registered (``shoal cluster add``)."""
        name, wanted = component.name, str(component.spec.get("cluster_name") or "")
        found = self._clusters(wanted) if wanted else None
        if found is None:
            raise StepFailed("DatabaseNotFound", f"database {name}: no cluster named {wanted!r} is registered "
                                                 f"with this shoal (shoal cluster add {wanted or 'NAME'} --engine ... "
                                                 "--url ...)")
        engine, url = found
        asked = str(component.spec.get("engine") or engine)
        if asked != engine and {asked, engine} != {"REDIS", "VALKEY"}:
            raise StepFailed("DatabaseNotFound", f"database {name}: cluster {wanted!r} is {engine}, not {asked}")
        parts = urlsplit(url)
        database = str(component.spec.get("db_name") or parts.path.lstrip("/"))
        if component.spec.get("db_name"):
            url = urlunsplit(parts._replace(path="/" + database))
        self._db_info[(target.app_id, name)] = DatabaseInfo(
            host=parts.hostname or "", port=parts.port or 0, user=unquote(parts.username or ""),
            password=unquote(parts.password or ""), database=database, version_served="", engine=engine)
        self._db_urls[(target.app_id, name)] = url
        log("DEPLOY", name, f"bound to cluster {wanted} ({engine} at {parts.hostname}:{parts.port or ''})")

    async def ensure(self, target: DeployTarget, log: LogSink) -> None:
        """After a restart of shoal the databases' connection details are looked up again."""
        for part in components(target.spec):
            if part.kind == "database" and (target.app_id, part.name) not in self._db_info:
                await self.provision(target, part, log)

    def forget_deployment(self, deployment_id: str) -> None:
        self._ports.pop(deployment_id, None)

    async def drop_app(self, app_id: str) -> None:
        """Deleting an app deletes its dev databases."""
        await self._databases.drop_app(app_id)
        self._db_info = {k: v for k, v in self._db_info.items() if k[0] != app_id}
        self._db_urls = {k: v for k, v in self._db_urls.items() if k[0] != app_id}

    async def close(self) -> None:
        await self._databases.close()
