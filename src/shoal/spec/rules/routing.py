"""HTTP routing: component routes, ingress rules and CORS policies.

Routes and rules share one path space: the same path (for the same authority) must not be claimed
twice, whether by two routes, two rules, or a route and a rule (app_action#261).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec.problems import Problem
from shoal.spec.rules.jobs import GO_DURATION_RE
from shoal.spec.rules.observability import header_problems
from shoal.spec.rules.view import Json, components, entries, flag, obj, text

ROUTABLE_KINDS = ("services", "static_sites", "functions")


def check_routing(spec: Json) -> Iterator[Problem]:
    kinds = {text(c, "name"): kind for kind, _p, c in components(spec) if text(c, "name")}
    claimed: dict[tuple[str, str], str] = {}
    ingress = obj(spec, "ingress") or {}
    for path, rule in entries(ingress, "rules", "ingress"):
        yield from _rule_problems(path, rule, kinds, claimed)
    for kind, path, component in components(spec, ROUTABLE_KINDS):
        for route_path, route in entries(component, "routes", path):
            yield from _route_problems(route_path, route, kind, claimed)
        cors = obj(component, "cors")
        if cors is not None:
            yield from cors_problems(f"{path}.cors", cors)
    url = text(ingress, "custom_error_page_url")
    if url is not None and not url.startswith("https://"):
        yield Problem("ingress.custom_error_page_url", "must be an https:// URL")
    for header_path, header in entries(ingress, "secure_header", "ingress"):
        yield from header_problems(header_path, header, value_required=flag(header, "remove_header") is not True)


def _claim(path: str, prefix: str, authority: str, claimed: dict[tuple[str, str], str]) -> Iterator[Problem]:
    if not prefix.startswith("/"):
        yield Problem(path, f'"{prefix[:64]}" must start with "/"')
        return
    key = (authority, prefix.rstrip("/") or "/")
    if key in claimed:
        yield Problem(path, f'path "{prefix}" conflicts with {claimed[key]}; paths must be unique across the app')
    else:
        claimed[key] = path


def _route_problems(path: str, route: Json, kind: str, claimed: dict[tuple[str, str], str]) -> Iterator[Problem]:
    prefix = text(route, "path")
    if route.get("path") is None:
        yield Problem(f"{path}.path", "is required")
    elif prefix is not None:
        yield from _claim(f"{path}.path", prefix, "", claimed)
    # preserve_path_prefix "is not applicable for Functions" (godo): ignored there, not refused.


def _rule_problems(path: str, rule: Json, kinds: dict[str | None, str], claimed: dict[tuple[str, str], str]) -> Iterator[Problem]:
    match = obj(rule, "match")
    prefix = text(obj(match, "path") or {}, "prefix") if match else None
    authority = text(obj(match, "authority") or {}, "exact") if match else None
    if match is None or (prefix is None and authority is None):
        yield Problem(f"{path}.match", "is required: set path.prefix and/or authority.exact")
    if prefix is not None:
        yield from _claim(f"{path}.match.path.prefix", prefix, authority or "", claimed)
    component, redirect = obj(rule, "component"), obj(rule, "redirect")
    if (component is None) == (redirect is None):
        yield Problem(path, "exactly one of component or redirect must be set")
    if component is not None:
        yield from _target_problems(f"{path}.component", component, kinds)
    if redirect is not None and not any(redirect.get(k) is not None for k in ("uri", "authority", "port", "scheme")):
        yield Problem(f"{path}.redirect", "must set at least one of uri, authority, port or scheme")
    cors = obj(rule, "cors")
    if cors is not None:
        yield from cors_problems(f"{path}.cors", cors)


def _target_problems(path: str, target: Json, kinds: dict[str | None, str]) -> Iterator[Problem]:
    name = text(target, "name")
    kind = kinds.get(name)
    if name is not None and kind is None:
        yield Problem(f"{path}.name", f'no component is named "{name[:64]}"')
    elif name is not None and kind not in ROUTABLE_KINDS:
        yield Problem(f"{path}.name", f'{kind} cannot receive HTTP traffic; "{name}" is not a service, static site or function')
    if flag(target, "preserve_path_prefix") and target.get("rewrite") is not None:
        yield Problem(f"{path}.rewrite", "only one of preserve_path_prefix or rewrite may be set")
    rewrite = text(target, "rewrite")
    if rewrite is not None and not rewrite.startswith("/"):
        yield Problem(f"{path}.rewrite", 'must start with "/"')


def cors_problems(path: str, cors: Json) -> Iterator[Problem]:
    for origin_path, origin in entries(cors, "allow_origins", path):
        matchers = [k for k in ("exact", "prefix", "regex") if origin.get(k) is not None]
        if len(matchers) != 1:
            yield Problem(origin_path, "exactly one of exact, prefix or regex must be set")
        regex = text(origin, "regex")
        if regex is not None and not _compiles(regex):
            yield Problem(f"{origin_path}.regex", f'"{regex[:64]}" is not a valid regular expression')
    max_age = text(cors, "max_age")
    if max_age is not None and not GO_DURATION_RE.match(max_age):
        yield Problem(f"{path}.max_age", f'"{max_age[:64]}" is not a duration such as "5h30m"')


def _compiles(pattern: str) -> bool:
    # DigitalOcean uses RE2; Python's engine accepts a superset, so this only catches plain errors.
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return False
    return True
