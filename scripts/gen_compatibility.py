"""Generate COMPATIBILITY.md: every DigitalOcean Apps API operation and whether shoal serves it.

Sources: the bundled OpenAPI file (what DigitalOcean documents), the godo-only routes and the
``doctl apps`` command set below (what DigitalOcean's clients call; from the reference files
``do-app-platform.md`` §1.4 and ``do-runtime-reference.md`` §1.2 and §6, which read godo and
doctl), and ``shoal.api.route_table.route_table()`` (what shoal's server really routes). Paths are
compared with every ``{parameter}`` treated as a wildcard, because shoal may name a segment
``{app_id}`` where the OpenAPI file says ``{id}``.

    python scripts/gen_compatibility.py            # rewrite COMPATIBILITY.md
    python scripts/gen_compatibility.py --check    # exit 1 if it is stale (CI)

The logic is importable (``read_operations``, ``render``) so tests can feed it a fake route
table; only ``main`` imports shoal or touches files.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OPENAPI = REPO_ROOT.parent / "shared" / "reference" / "do-apps-openapi.yaml"
DEFAULT_OUTPUT = REPO_ROOT / "COMPATIBILITY.md"

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM_RE = re.compile(r"\{[^}]*\}")

Route = tuple[str, str]

# Routes godo (and so doctl and Terraform) calls that DigitalOcean's OpenAPI file lacks.
GODO_ONLY: tuple[tuple[str, str, str], ...] = (
    ("GET", "/v2/apps/buildpacks", "List buildpacks (ListBuildpacks)"),
    ("POST", "/v2/apps/{id}/upgrade_buildpack", "Upgrade an app's buildpack (UpgradeBuildpack)"),
    ("POST", "/v2/apps/detect", "Detect how a source would be built (Detect)"),
    ("GET", "/v2/apps/{id}/database_connection_details", "Database connection details (GetAppDatabaseConnectionDetails)"),
    ("POST", "/v2/apps/{id}/components/{name}/reset_password", "Reset a database's password (ResetDatabasePassword)"),
    ("POST", "/v2/apps/{id}/components/{name}/trusted_sources", "Toggle database trusted sources "
                                                                 "(ToggleDatabaseTrustedSource)"),
    ("GET", "/v2/apps/tiers", "List tiers, deprecated (ListTiers)"),
    ("GET", "/v2/apps/tiers/{slug}", "Get a tier, deprecated (GetTier)"),
)

# ``doctl apps`` subcommands and the API routes each one calls. ``None`` instead of routes: the
# command talks to no API, with the reason shown.
DOCTL_APPS: tuple[tuple[str, tuple[Route, ...] | str], ...] = (
    ("apps create", (("POST", "/v2/apps"), ("GET", "/v2/apps"), ("PUT", "/v2/apps/{id}"),
                     ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),  # --upsert, --wait
    ("apps get", (("GET", "/v2/apps/{id}"),)),
    ("apps list", (("GET", "/v2/apps"),)),
    ("apps update", (("PUT", "/v2/apps/{id}"), ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),
    ("apps delete", (("DELETE", "/v2/apps/{id}"),)),
    ("apps restart", (("POST", "/v2/apps/{app_id}/restart"), ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),
    ("apps create-deployment", (("POST", "/v2/apps/{app_id}/deployments"),
                                ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),
    ("apps get-deployment", (("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"),)),
    ("apps list-deployments", (("GET", "/v2/apps/{app_id}/deployments"),)),
    ("apps logs", (("GET", "/v2/apps/{app_id}/deployments/{deployment_id}/components/{component_name}/logs"),
                   ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}/logs"), ("GET", "/v2/apps/{id}"),
                   ("GET", "/v2/logs/history"), ("GET", "/v2/logs/live"))),
    ("apps console", (("GET", "/v2/apps/{app_id}/components/{component_name}/exec"),
                      ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}/components/{component_name}/exec"))),
    ("apps list-regions", (("GET", "/v2/apps/regions"),)),
    ("apps propose", (("POST", "/v2/apps/propose"),)),
    ("apps spec get", (("GET", "/v2/apps/{id}"), ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),
    ("apps spec validate", (("POST", "/v2/apps/propose"),)),
    ("apps tier list", (("GET", "/v2/apps/tiers"),)),
    ("apps tier get", (("GET", "/v2/apps/tiers/{slug}"),)),
    ("apps tier instance-size list", (("GET", "/v2/apps/tiers/instance_sizes"),)),
    ("apps tier instance-size get", (("GET", "/v2/apps/tiers/instance_sizes/{slug}"),)),
    ("apps list-alerts", (("GET", "/v2/apps/{app_id}/alerts"),)),
    ("apps update-alert-destinations", (("POST", "/v2/apps/{app_id}/alerts/{alert_id}/destinations"),)),
    ("apps list-buildpacks", (("GET", "/v2/apps/buildpacks"),)),
    ("apps upgrade-buildpack", (("POST", "/v2/apps/{id}/upgrade_buildpack"),
                                ("GET", "/v2/apps/{app_id}/deployments/{deployment_id}"))),
    ("apps dev build", "builds one component image with a local Docker daemon; calls no API shoal could serve"),
    ("apps dev config set", "edits the local dev config file (.do/dev-config.yaml); calls no API"),
    ("apps dev config unset", "edits the local dev config file (.do/dev-config.yaml); calls no API"),
)


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    summary: str
    tag: str
    deprecated: bool = False


def read_operations(openapi: Mapping[str, Any]) -> list[Operation]:
    """Every operation in an OpenAPI document, in file order, under its first tag."""
    found: list[Operation] = []
    for path, item in (openapi.get("paths") or {}).items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue  # path-level "parameters", "summary", ... are not operations
            tags = op.get("tags") or ["Other"]
            found.append(
                Operation(
                    operation_id=op.get("operationId") or f"{method}_{path}",
                    method=method.upper(),
                    path=path,
                    summary=" ".join(str(op.get("summary") or "").split()),
                    tag=str(tags[0]),
                    deprecated=bool(op.get("deprecated")),
                )
            )
    return found


def route_key(method: str, path: str) -> Route:
    """(METHOD, path) with parameter names erased and any trailing slash dropped."""
    shape = _PARAM_RE.sub("{}", path)
    return method.upper(), (shape.rstrip("/") or "/")


def render(operations: Sequence[Operation], routes: Iterable[Route]) -> str:
    """The whole Markdown document for these operations against this route table."""
    routes = list(routes)
    served = _served(routes)
    godo = {route_key(m, p) for m, p, _ in GODO_ONLY}
    documented = {route_key(op.method, op.path) for op in operations}
    lines = [
        "# Compatibility with the DigitalOcean Apps API",
        "",
        f"**{summary(operations, routes)}.**",
        "",
        "Generated by `scripts/gen_compatibility.py` from DigitalOcean's OpenAPI description, the routes",
        "godo calls beyond it, doctl's `apps` commands, and shoal's route table",
        "(`shoal.api.route_table.route_table()`); do not edit by hand.",
    ]
    for tag, group in _by_tag(operations).items():
        done = sum(1 for op in group if route_key(op.method, op.path) in served)
        lines += ["", f"## {tag} ({done} of {len(group)})", ""]
        lines += ["| operationId | method | path | summary | doctl | shoal |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for op in group:
            mark = "yes" if route_key(op.method, op.path) in served else "no"
            described = op.summary + (" (deprecated)" if op.deprecated else "")
            lines.append(f"| `{op.operation_id}` | {op.method} | `{op.path}` | {_cell(described)} | "
                         f"{_commands(op.method, op.path)} | {mark} |")
    lines += _godo_section(served)
    lines += _doctl_section(served)
    extras = sorted((route for key, route in served.items() if key not in documented and key not in godo),
                    key=_order)
    lines += ["", "## Routes shoal serves beyond the OpenAPI file", ""]
    if extras:
        lines += ["| method | path |", "| --- | --- |"]
        lines += [f"| {method} | `{path}` |" for method, path in extras]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def _commands(method: str, path: str) -> str:
    """The doctl commands that call this route, or a dash."""
    key = route_key(method, path)
    names = [f"`{name}`" for name, calls in DOCTL_APPS
             if not isinstance(calls, str) and any(route_key(m, p) == key for m, p in calls)]
    return ", ".join(names) or "—"


def _godo_section(served: Mapping[Route, Route]) -> list[str]:
    done = sum(1 for m, p, _ in GODO_ONLY if route_key(m, p) in served)
    lines = ["", f"## Routes godo calls that the OpenAPI file lacks ({done} of {len(GODO_ONLY)})", "",
             "| method | path | godo | doctl | shoal |", "| --- | --- | --- | --- | --- |"]
    for method, path, what in GODO_ONLY:
        mark = "yes" if route_key(method, path) in served else "no"
        lines.append(f"| {method} | `{path}` | {_cell(what)} | {_commands(method, path)} | {mark} |")
    return lines


def _doctl_section(served: Mapping[Route, Route]) -> list[str]:
    api = [(n, c) for n, c in DOCTL_APPS if not isinstance(c, str)]
    done = sum(1 for _, calls in api if all(route_key(m, p) in served for m, p in calls))
    lines = ["", f"## doctl `apps` commands ({done} of {len(api)} that call the API)", "",
             "| command | calls | shoal |", "| --- | --- | --- |"]
    for name, calls in DOCTL_APPS:
        if isinstance(calls, str):
            lines.append(f"| `doctl {name}` | none | not an API command: {_cell(calls)} |")
            continue
        missing = [f"{m} `{p}`" for m, p in calls if route_key(m, p) not in served]
        called = "<br>".join(f"{m} `{p}`" for m, p in calls)
        lines.append(f"| `doctl {name}` | {called} | {'yes' if not missing else 'no: ' + ', '.join(missing)} |")
    return lines


def summary(operations: Sequence[Operation], routes: Iterable[Route]) -> str:
    """The headline: "N of M operations implemented"."""
    served = _served(routes)
    done = sum(1 for op in operations if route_key(op.method, op.path) in served)
    return f"{done} of {len(operations)} operations implemented"


def _served(routes: Iterable[Route]) -> dict[Route, Route]:
    """Normalised key → the route as shoal declares it, leaving out the HEAD twin of each GET."""
    table = [(method.upper(), path) for method, path in routes]
    keys = {route_key(m, p) for m, p in table}
    served: dict[Route, Route] = {}
    for method, path in table:
        key = route_key(method, path)
        # Starlette answers HEAD for every GET; listing those as "extra" would only add noise,
        # but a HEAD route without a GET is a deliberate choice worth showing.
        if method == "HEAD" and ("GET", key[1]) in keys:
            continue
        served.setdefault(key, (method, path))
    return served


def _by_tag(operations: Sequence[Operation]) -> dict[str, list[Operation]]:
    groups: dict[str, list[Operation]] = {}
    for op in operations:
        groups.setdefault(op.tag, []).append(op)
    return groups


def _order(route: Route) -> tuple[str, str]:
    return route[1], route[0]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _shoal_routes() -> list[Route]:
    # Prefer an installed shoal, but work from a plain checkout too (src layout).
    try:
        from shoal.api.route_table import route_table
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT / "src"))
        from shoal.api.route_table import route_table
    return list(route_table())


def main(argv: Sequence[str] | None = None, routes: Sequence[Route] | None = None) -> int:
    """``routes`` defaults to shoal's real route table (tests pass their own)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi", type=Path, default=DEFAULT_OPENAPI, help="DigitalOcean Apps OpenAPI YAML")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where COMPATIBILITY.md lives")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file on disk is out of date")
    args = parser.parse_args(argv)

    operations = read_operations(yaml.safe_load(args.openapi.read_text(encoding="utf-8")))
    routes = list(routes) if routes is not None else _shoal_routes()
    text = render(operations, routes)
    headline = summary(operations, routes)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output.name} is out of date; run: python scripts/gen_compatibility.py", file=sys.stderr)
            return 1
        print(f"{args.output.name} is up to date: {headline}")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {headline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
