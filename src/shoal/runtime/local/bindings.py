"""What a deployment's processes are told: the ports of every instance, their databases, the
bindable variables of the app, and the plaintext of its secrets (decrypted here only, into the
environments of the processes that need them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import unquote, urlsplit, urlunsplit

from shoal.core.errors import BadRequest, InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted
from shoal.domain.bindables import (
    BindContext,
    database_variables,
    resolve,
    routed_variables,
    service_variables,
    worker_variables,
)
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, EnvVar, Kind, RunUnit
from shoal.domain.ports import DatabaseConnection, LogSink
from shoal.runtime.local.databases import DatabaseInfo, DevDatabases
from shoal.runtime.local.environment import ValueOf, plain_value
from shoal.runtime.local.ports import allocate, port_is_free

Clusters = Callable[[str], tuple[str, str] | None]


class Bindings:
    def __init__(self, box: SecretBox | None, databases: DevDatabases, clusters: Clusters) -> None:
        self._box = box
        self._databases = databases
        self._clusters = clusters  # registered cluster name → (engine, URL)
        self._db_info: dict[tuple[str, str], DatabaseInfo] = {}
        self._db_urls: dict[tuple[str, str], str] = {}  # production databases: the cluster's own URL
        self._ports: dict[str, dict[str, list[int]]] = {}  # deployment → service → its instances' ports

    def value_of(self, plan: AppPlan, self_name: str, build_time: bool) -> ValueOf:
        """Final values: secrets decrypted (only ever into a process's environment), bindables resolved."""
        ctx = self.context(plan)

        def value(var: EnvVar) -> str:
            raw = plain_value(var)
            if var.secret and self._box is not None and is_encrypted(raw):
                try:
                    raw = self._box.decrypt(plan.account_id, raw)
                except InvalidArgument as exc:
                    raise StepFailed("InternalError", f"{self_name}: secret {var.key} cannot be "
                                                      f"decrypted ({exc.message})") from exc
            return resolve(raw, ctx, self_name, build_time)

        return value

    def context(self, plan: AppPlan) -> BindContext:
        domain = plan.app_url.split("://", 1)[-1].split("/", 1)[0]
        route_of = {r.component: r.prefix for r in reversed(plan.routes) if r.component}
        ports = self.instance_ports(plan)
        variables: dict[str, dict[str, str]] = {}
        for unit in plan.units:
            route = route_of.get(unit.name)
            if unit.kind == Kind.SERVICE:
                host, port = self.private_address(unit, ports.get(unit.name, []))
                variables[unit.name] = service_variables(
                    unit.name, unit.http_port, list(unit.internal_ports), plan.app_url if route else None, route,
                    unit.commit, host, port)
            elif unit.kind in (Kind.STATIC_SITE, Kind.FUNCTION):
                variables[unit.name] = routed_variables(plan.app_url if route else None, route, unit.commit)
            elif unit.kind != Kind.DATABASE:
                variables[unit.name] = worker_variables(unit.commit)
        databases = {name: database_variables(*self.database_address(plan.app_id, i), i.user, i.password,
                                              i.database, i.engine)
                     for (app_id, name), i in self._db_info.items() if app_id == plan.app_id}
        for (app_id, name), url in self._db_urls.items():
            if app_id == plan.app_id:
                databases[name]["DATABASE_URL"] = url
        return BindContext(app={"APP_URL": plan.app_url, "APP_DOMAIN": domain, "APP_ID": plan.app_id},
                           components=variables, databases=databases)

    def private_address(self, unit: RunUnit, ports: list[int]) -> tuple[str, int | None]:
        """Where the app's other components reach a service: here, its first instance's loopback port."""
        return "127.0.0.1", ports[0] if ports else None

    def database_address(self, app_id: str, info: DatabaseInfo) -> tuple[str, int]:
        """Where the app's processes reach a database: here, where it listens."""
        return info.host, info.port

    def instance_ports(self, plan: AppPlan) -> dict[str, list[int]]:
        """Ports of every service instance (and functions gateway) of the deployment, chosen once up front so that
        ``${api.PRIVATE_URL}`` is known to a component that starts before ``api`` does."""
        planned = self._ports.get(plan.deployment_id)
        if planned is None:
            taken = self.taken_ports()
            planned = {}
            for unit in plan.units:
                if unit.kind not in (Kind.SERVICE, Kind.FUNCTION):
                    continue
                # A functions component's gateway takes any free port: no app hard-codes it.
                wanted = (unit.http_port or DEFAULT_HTTP_PORT) if unit.kind == Kind.SERVICE else None
                planned[unit.name] = []
                for i in range(unit.instance_count):
                    port = allocate(wanted if i == 0 else None, taken)
                    taken.add(port)
                    planned[unit.name].append(port)
            self._ports[plan.deployment_id] = planned
        return planned

    def instance_port(self, plan: AppPlan, unit: RunUnit, index: int, log: LogSink | None = None) -> int | None:
        """The port of a service's ``index``-th instance, allocated now for one beyond the planned
        count (autoscaling): instance 0 keeps the port ``${...PRIVATE_URL}`` names. Checked free
        right before the instance starts: when another program took it meanwhile (during the
        build), the instance gets a free one instead, and the log says so."""
        if unit.kind != Kind.SERVICE:
            return None
        ports = self.instance_ports(plan).setdefault(unit.name, [])
        while len(ports) <= index:
            port = allocate(None, self.taken_ports())
            ports.append(port)
        if not port_is_free(ports[index]):
            taken, ports[index] = ports[index], allocate(None, self.taken_ports())
            if log is not None:
                log("DEPLOY", unit.name, f"port {taken} is taken by another program; instance {index} of "
                                         f"{unit.name} listens on {ports[index]} instead")
        return ports[index]

    def taken_ports(self) -> set[int]:
        return {port for plan in self._ports.values() for ports in plan.values() for port in ports}

    async def provision(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        db = unit.database
        assert db is not None, "only database units are provisioned"
        if db.production or db.cluster_name:
            self._bind_cluster(plan, unit, log)
            return
        info = await self._databases.provision(plan.app_id, unit.name, db.db_name, db.db_user, db.version)
        self._db_info[(plan.app_id, unit.name)] = info
        log("DEPLOY", unit.name, f"dev database {info.database} ready at {info.host}:{info.port} "
                                      f"(PostgreSQL {info.version_served})")
        if info.warning:
            log("DEPLOY", unit.name, f"warning: {info.warning}")

    def _bind_cluster(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        """A production database binds to a cluster the operator registered (``shoal cluster add``)."""
        db = unit.database
        assert db is not None
        name, wanted = unit.name, db.cluster_name or ""
        found = self._clusters(wanted) if wanted else None
        if found is None:
            raise StepFailed("DatabaseNotFound", f"database {name}: no cluster named {wanted!r} is registered "
                                                 f"with this shoal (shoal cluster add {wanted or 'NAME'} --engine ... "
                                                 "--url ...)")
        engine, url = found
        asked = db.engine or engine
        if asked != engine and {asked, engine} != {"REDIS", "VALKEY"}:
            raise StepFailed("DatabaseNotFound", f"database {name}: cluster {wanted!r} is {engine}, not {asked}")
        parts = urlsplit(url)
        database = db.db_name or parts.path.lstrip("/")
        if db.db_name:
            url = urlunsplit(parts._replace(path="/" + database))
        self._db_info[(plan.app_id, name)] = DatabaseInfo(
            host=parts.hostname or "", port=parts.port or 0, user=unquote(parts.username or ""),
            password=unquote(parts.password or ""), database=database, version_served="", engine=engine)
        self._db_urls[(plan.app_id, name)] = url
        log("DEPLOY", name, f"bound to cluster {wanted} ({engine} at {parts.hostname}:{parts.port or ''})")

    async def ensure(self, plan: AppPlan, log: LogSink) -> None:
        """After a restart of shoal the databases' connection details are looked up again."""
        for unit in plan.units:
            if unit.kind == Kind.DATABASE and (plan.app_id, unit.name) not in self._db_info:
                await self.provision(plan, unit, log)

    def connections(self, app_id: str) -> list[DatabaseConnection]:
        """The app's databases as a client on this host reaches them (a container's address for the
        same database differs: that one is only for the app's own processes)."""
        found = []
        for (owner, name), info in sorted(self._db_info.items()):
            if owner != app_id:
                continue
            cluster_url = self._db_urls.get((owner, name))
            url = cluster_url or database_variables(info.host, info.port, info.user, info.password, info.database,
                                                    info.engine).get("DATABASE_URL", "")
            found.append(DatabaseConnection(name, info.engine or "PG", info.host, info.port, info.user, info.password,
                                            info.database, url, managed=cluster_url is None))
        return found

    async def reset_password(self, app_id: str, name: str) -> None:
        info = self._db_info.get((app_id, name))
        if (app_id, name) in self._db_urls:
            raise BadRequest(f"database {name} is a cluster registered with this shoal: its password is kept "
                             "where the cluster is run, not by shoal")
        password = await self._databases.reset_password(app_id, name)
        if info is not None:
            self._db_info[(app_id, name)] = replace(info, password=password)

    def forget_deployment(self, deployment_id: str) -> None:
        self._ports.pop(deployment_id, None)

    async def drop_app(self, app_id: str) -> None:
        """Deleting an app deletes its dev databases."""
        await self._databases.drop_app(app_id)
        self._db_info = {k: v for k, v in self._db_info.items() if k[0] != app_id}
        self._db_urls = {k: v for k, v in self._db_urls.items() if k[0] != app_id}

    async def close(self) -> None:
        await self._databases.close()
