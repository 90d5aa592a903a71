"""App-wide settings: region, domains, databases, maintenance."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec import catalog
from shoal.spec.problems import Problem
from shoal.spec.rules.view import Json, entries, flag, obj, text

HOSTNAME_RE = re.compile(r"^((xn--)?[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*\.)+[a-zA-Z]{2,}\.?$")
DEV_DATABASE_ENGINES = ("PG", "UNSET")


def check_app(spec: Json) -> Iterator[Problem]:
    region = text(spec, "region")
    if region is not None and catalog.find_region(region.lower()) is None:
        known = ", ".join(r.slug for r in catalog.REGIONS)
        yield Problem("region", f'unknown region "{region[:64]}"; expected one of {known}')
    yield from _domain_problems(spec)
    yield from _database_problems(spec)
    maintenance = obj(spec, "maintenance")
    url = text(maintenance, "offline_page_url") if maintenance else None
    if url is not None and not url.startswith("https://"):
        yield Problem("maintenance.offline_page_url", "must be an https:// URL")


def valid_hostname(name: str) -> bool:
    return 4 <= len(name) <= 253 and bool(HOSTNAME_RE.match(name))


def _domain_problems(spec: Json) -> Iterator[Problem]:
    primary: str | None = None
    seen: dict[str, str] = {}
    for path, domain in entries(spec, "domains"):
        name = text(domain, "domain")
        if name is not None and not valid_hostname(name):
            yield Problem(f"{path}.domain", f'"{name[:64]}" is not a valid hostname')
        elif name is not None and name.lower().rstrip(".") in seen:
            yield Problem(f"{path}.domain", f'"{name}" is already listed at {seen[name.lower().rstrip(".")]}')
        elif name is not None:
            seen[name.lower().rstrip(".")] = path
        zone = text(domain, "zone")
        if zone is not None and not valid_hostname(zone):
            yield Problem(f"{path}.zone", f'"{zone[:64]}" is not a valid DNS zone')
        elif zone and name and valid_hostname(name) and not _within(name, zone):
            yield Problem(f"{path}.zone", f'domain "{name}" is not inside zone "{zone}"')
        if domain.get("type") == "PRIMARY":
            if primary is not None:
                yield Problem(f"{path}.type", f"only one domain may be PRIMARY ({primary} already is)")
            primary = primary or path


def _within(name: str, zone: str) -> bool:
    name, zone = name.lower().rstrip("."), zone.lower().rstrip(".")
    return name == zone or name.endswith("." + zone)


def _database_problems(spec: Json) -> Iterator[Problem]:
    for path, database in entries(spec, "databases"):
        cluster = text(database, "cluster_name")
        if flag(database, "production") and not cluster:
            yield Problem(f"{path}.cluster_name", "is required for a production database")
        engine = text(database, "engine") or "UNSET"
        if not cluster and engine not in DEV_DATABASE_ENGINES:
            yield Problem(
                f"{path}.engine",
                f"dev databases are PostgreSQL only (engine PG); set cluster_name to attach an existing {engine} cluster",
            )
