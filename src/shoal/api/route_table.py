"""The route table as (METHOD, path template) pairs: what COMPATIBILITY.md is generated from."""

from __future__ import annotations

from starlette.routing import Route

from shoal.api.app import all_routes


def route_table() -> list[tuple[str, str]]:
    table: list[tuple[str, str]] = []
    for route in all_routes():
        if not isinstance(route, Route) or route.path.endswith("/"):  # trailing-slash aliases are not operations
            continue
        table.extend((method, route.path) for method in sorted((route.methods or set()) - {"HEAD"}))
    return table
