"""Bindable variables: the ``${...}`` references in env values, resolved at deploy time (reference §5.2).

Role: given what a deployment knows about the app, its components and its databases, turn
``${APP_URL}``, ``${_self.PRIVATE_PORT}``, ``${db.DATABASE_URL}`` … into their values, and build
the per-kind variable dicts those references read. Pure: values in, strings out — the engine
gathers the facts (ports, hosts, credentials) and the runtime uses the result.

Rules, as DigitalOcean behaves:

- ``${APP_URL}``, ``${APP_DOMAIN}``, ``${APP_ID}`` are app-wide; any other single name
  (``${HOME}``, ``${PORT}``) is a shell-style reference and is left for the shell.
- ``${<component>.VAR}`` and ``${_self.VAR}`` read a component's variables; ``${<db>.VAR}``
  a database's, and ``${<db>.<pool>.VAR}`` a connection pool's (registered in
  ``BindContext.databases`` under the key ``"<db>.<pool>"``).
- Database variables do not exist at build time, so there they stay as written.
- Anything that cannot be resolved stays verbatim, exactly as written — users see the literal
  ``${...}`` on DigitalOcean too, and the spec validator (``shoal.spec.rules.envs``) has already
  reported mistakes it could see.
- Substitution is a single pass: a resolved value that itself contains ``${...}`` (a password,
  say) is never expanded again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from shoal.spec.rules.envs import APP_VARIABLES, REFERENCE_RE

_SELF = "_self"


@dataclass(frozen=True)
class BindContext:
    """What ``${...}`` references can see during one deployment.

    ``app`` holds APP_URL, APP_DOMAIN and APP_ID; ``components`` maps a component name to
    its variables (see ``service_variables``); ``databases`` maps a database name to its
    variables (see ``database_variables``).
    """

    app: dict[str, str] = field(default_factory=dict)
    components: dict[str, dict[str, str]] = field(default_factory=dict)
    databases: dict[str, dict[str, str]] = field(default_factory=dict)


def resolve(value: str, ctx: BindContext, self_name: str | None, build_time: bool = False) -> str:
    """``value`` with every resolvable bindable reference replaced; the rest left as written.

    ``self_name`` is the component whose env this is (``None`` for app-level envs, where
    ``${_self.X}`` cannot resolve); ``build_time`` hides database variables.
    """
    if "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        found = lookup(match.group(1), ctx, self_name, build_time)
        return match.group(0) if found is None else found

    return REFERENCE_RE.sub(replace, value)


def lookup(reference: str, ctx: BindContext, self_name: str | None, build_time: bool = False) -> str | None:
    """The value of one reference (the text between ``${`` and ``}``), or None when it has none."""
    parts = reference.split(".")
    if len(parts) == 1:
        return ctx.app.get(reference) if reference in APP_VARIABLES else None
    owner = self_name if parts[0] == _SELF else parts[0]
    if owner is None:
        return None
    if len(parts) == 2 and owner in ctx.components:
        return ctx.components[owner].get(parts[1])
    if build_time:
        return None
    if len(parts) == 2:
        return ctx.databases.get(owner, {}).get(parts[1])
    if len(parts) == 3 and parts[0] != _SELF:
        return ctx.databases.get(f"{owner}.{parts[1]}", {}).get(parts[2])
    return None


def service_variables(
    name: str,
    http_port: int | None,
    internal_ports: list[int],
    public_url: str | None,
    route_path: str | None,
    commit: str | None,
    private_host: str,
    private_port: int | None,
) -> dict[str, str]:
    """A service's variables.

    Shape chosen (``name`` is accepted for symmetry; on DigitalOcean the private domain *is*
    the name, locally the engine passes whatever host reaches the instance as ``private_host``):

    - PRIVATE_DOMAIN = ``private_host``
    - PRIVATE_PORT = ``private_port``, else ``http_port``, else the first internal port;
      PRIVATE_URL = ``http://<private_host>:<PRIVATE_PORT>``. Both absent when no port is known.
    - PUBLIC_URL = ``public_url`` (the app's base URL, e.g. APP_URL) joined with ``route_path``;
      PUBLIC_ROUTE_PATH = ``route_path``. Absent for services without a public route.
    - COMMIT_HASH = ``commit``; absent for image-based components (so it stays verbatim).
    """
    port = private_port or http_port or (internal_ports[0] if internal_ports else None)
    variables = {"PRIVATE_DOMAIN": private_host}
    if port:
        variables["PRIVATE_PORT"] = str(port)
        variables["PRIVATE_URL"] = f"http://{_host(private_host)}:{port}"
    variables.update(routed_variables(public_url, route_path, commit))
    return variables


def routed_variables(public_url: str | None, route_path: str | None, commit: str | None) -> dict[str, str]:
    """Variables of static sites and functions (and the routed part of a service's)."""
    variables: dict[str, str] = {}
    if route_path is not None:
        variables["PUBLIC_ROUTE_PATH"] = route_path
    if public_url is not None:
        variables["PUBLIC_URL"] = join_url(public_url, route_path)
    variables.update(worker_variables(commit))
    return variables


def worker_variables(commit: str | None) -> dict[str, str]:
    """Variables of workers and jobs: only the commit they were built from."""
    return {"COMMIT_HASH": commit} if commit else {}


def join_url(base: str, route_path: str | None) -> str:
    """``base`` followed by ``route_path``, with exactly one slash between; ``/`` adds nothing."""
    path = (route_path or "").strip("/")
    return f"{base.rstrip('/')}/{path}" if path else base.rstrip("/")


def database_variables(host: str, port: int, user: str, password: str, database: str,
                       engine: str = "PG") -> dict[str, str]:
    """A database's variables; the URL variables follow the engine.

    PG (also UNSET/empty, the dev-database default): DATABASE_URL ``postgresql://u:p@h:port/db``
    and JDBC_DATABASE_URL ``jdbc:postgresql://h:port/db?user=u&password=p``. MYSQL: ``mysql://``
    and ``jdbc:mysql://``. REDIS and VALKEY: REDIS_URL (and DATABASE_URL) ``redis://u:p@h:port``.
    MONGODB: ``mongodb://``. Other engines get only the plain fields. User, password and
    database are percent-encoded in URLs. No ``sslmode=require``: local databases have no TLS,
    hence CA_CERT is empty.
    """
    variables = {
        "HOSTNAME": host, "PORT": str(port), "USERNAME": user, "PASSWORD": password,
        "DATABASE": database, "CA_CERT": "",
    }
    kind = (engine or "PG").upper()
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    address = f"{_host(host)}:{port}"
    path = f"/{quote(database, safe='')}" if database else ""
    jdbc_query = urlencode({"user": user, "password": password})
    if kind in ("PG", "UNSET"):
        variables["DATABASE_URL"] = f"postgresql://{credentials}@{address}{path}"
        variables["JDBC_DATABASE_URL"] = f"jdbc:postgresql://{address}{path}?{jdbc_query}"
    elif kind == "MYSQL":
        variables["DATABASE_URL"] = f"mysql://{credentials}@{address}{path}"
        variables["JDBC_DATABASE_URL"] = f"jdbc:mysql://{address}{path}?{jdbc_query}"
    elif kind in ("REDIS", "VALKEY"):
        variables["DATABASE_URL"] = variables["REDIS_URL"] = f"redis://{credentials}@{address}{path}"
    elif kind == "MONGODB":
        variables["DATABASE_URL"] = f"mongodb://{credentials}@{address}{path}"
    return variables


def _host(host: str) -> str:
    # An IPv6 literal needs brackets inside a URL's authority.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
