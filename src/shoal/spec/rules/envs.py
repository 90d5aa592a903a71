"""Environment variables: key format and duplicates; bindable ``${...}`` references (reference §5.2).

A reference that names nothing the app has is *not* a problem: DigitalOcean leaves it verbatim in
the value (reference §5.2), so refusing it would be stricter than DigitalOcean (issue 13 item 6).
``reference_warnings`` reports them instead, for propose to show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec.problems import Problem
from shoal.spec.rules.view import ALL_KINDS, COMPONENT_KINDS, Json, components, entries, text

ENV_KEY_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
REFERENCE_RE = re.compile(r"\$\{([^{}]*)\}")

APP_VARIABLES = frozenset({"APP_URL", "APP_DOMAIN", "APP_ID"})
_ROUTED = frozenset({"COMMIT_HASH", "PUBLIC_ROUTE_PATH", "PUBLIC_URL"})
COMPONENT_VARIABLES: dict[str, frozenset[str]] = {
    "services": _ROUTED | {"PRIVATE_DOMAIN", "PRIVATE_URL", "PRIVATE_PORT"},
    "static_sites": _ROUTED,
    "functions": _ROUTED | {"FUNCTIONS_LOG_DESTINATION_JSON"},
    "workers": frozenset({"COMMIT_HASH"}),
    # The docs list nothing for jobs; they are built from a commit like workers [inferred].
    "jobs": frozenset({"COMMIT_HASH"}),
    # DATABASE_PRIVATE_URL comes from a third-party guide (unverified) and is accepted rather than refused.
    "databases": frozenset(
        {"HOSTNAME", "PORT", "USERNAME", "PASSWORD", "DATABASE", "DATABASE_URL", "JDBC_DATABASE_URL",
         "REDIS_URL", "CA_CERT", "DATABASE_PRIVATE_URL"}
    ),
}
POOL_VARIABLES = frozenset({"HOSTNAME", "PORT", "USERNAME", "PASSWORD", "DATABASE", "DATABASE_URL", "JDBC_DATABASE_URL", "CA_CERT"})


def check_envs(spec: Json) -> Iterator[Problem]:
    kinds = {text(c, "name"): kind for kind, _path, c in components(spec, ALL_KINDS) if text(c, "name")}
    yield from _list_problems("", spec, kinds, own_kind=None)
    for kind, path, component in components(spec, COMPONENT_KINDS):
        yield from _list_problems(path, component, kinds, own_kind=kind)


def _list_problems(base: str, holder: Json, kinds: dict[str | None, str], own_kind: str | None) -> Iterator[Problem]:
    first_use: dict[str, str] = {}
    for env_path, env in entries(holder, "envs", base):
        key = text(env, "key")
        if key is not None and not ENV_KEY_RE.match(key):
            yield Problem(f"{env_path}.key", f'"{key[:64]}" must start with a letter or underscore and contain only letters, digits and underscores')
        elif key is not None and key in first_use:
            yield Problem(f"{env_path}.key", f'duplicate key "{key}" (already set at {first_use[key]})')
        elif key is not None:
            first_use[key] = env_path


def reference_warnings(spec: Json) -> list[str]:
    """``<path>: <why>`` for each bindable reference that will stay verbatim because it names nothing."""
    kinds = {text(c, "name"): kind for kind, _path, c in components(spec, ALL_KINDS) if text(c, "name")}
    holders = [("", spec, None), *((path, c, kind) for kind, path, c in components(spec, COMPONENT_KINDS))]
    found = []
    for base, holder, own_kind in holders:
        for env_path, env in entries(holder, "envs", base):
            value = text(env, "value")
            if value is not None and "${" in value:
                found += [f"{env_path}.value: {message}; it is left as written"
                          for message in reference_problems(value, kinds, own_kind)]
    return found


def reference_problems(value: str, kinds: dict[str | None, str], own_kind: str | None) -> Iterator[str]:
    """Why each bindable reference in ``value`` cannot be resolved; plain shell-style refs pass."""
    for match in REFERENCE_RE.finditer(value):
        reference = match.group(1)
        parts = reference.split(".")
        if len(parts) == 1:
            if reference.startswith("APP_") and reference not in APP_VARIABLES:
                yield f'unknown app variable "${{{reference}}}"; expected one of APP_URL, APP_DOMAIN, APP_ID'
            continue
        problem = _scoped_problem(parts, kinds, own_kind)
        if problem:
            yield f'"${{{reference[:80]}}}": {problem}'


def _scoped_problem(parts: list[str], kinds: dict[str | None, str], own_kind: str | None) -> str | None:
    owner, variable = parts[0], parts[-1]
    if owner == "_self":
        if own_kind is None:
            return "_self can only be used in a component's envs"
        kind = own_kind
    elif owner in kinds:
        kind = kinds[owner]
    else:
        return f'no component or database is named "{owner}"'
    if len(parts) == 3 and kind == "databases":
        return None if variable in POOL_VARIABLES else f'unknown connection pool variable "{variable}"'
    if len(parts) != 2:
        return "expected ${<component>.<VARIABLE>}"
    if variable not in COMPONENT_VARIABLES[kind]:
        known = ", ".join(sorted(COMPONENT_VARIABLES[kind]))
        return f'{kind.rstrip("s").replace("_", " ")} "{owner}" has no variable "{variable}" (known: {known})'
    return None
