"""What changing from one normalised spec to another requires of a deployment.

A component needs a **rebuild** when it is new, changed kind, or anything that goes into its build
changed: source, build settings, or the build-time environment (app-level envs included). Static
sites and functions are build artefacts, so any change to them rebuilds. Otherwise a component
whose settings changed needs only a **redeploy** (run command, run-time envs, size, count, ports,
health checks...). Databases are never built: a change to one is a redeploy. Routing changes when
ingress rules or domains differ; ``app_changed`` names the other app-wide settings that differ
(maintenance, egress, features, alerts, ...).

Both specs are compared with DigitalOcean's running defaults written out (``defaults.effective``):
a default left out on one side and spelled out on the other is no change. ``changed`` is False
exactly when a deployment of ``new`` would run what one of ``old`` runs — the engine then skips
the redeploy (re-applying a spec read back from the API restarts nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.spec.defaults import effective

Json = dict[str, Any]

KINDS = ("services", "static_sites", "workers", "jobs", "functions", "databases")
BUILT_WHOLE = frozenset({"static_sites", "functions"})
RUN_KINDS = frozenset({"services", "workers", "jobs"})
ALL_SCOPES = frozenset({"BUILD_TIME", "RUN_TIME", "RUN_AND_BUILD_TIME", "UNSET"})
BUILD_KEYS = frozenset({
    "git", "github", "gitlab", "bitbucket", "image",
    "dockerfile_path", "build_command", "source_dir", "environment_slug",
})
BUILD_SCOPES = frozenset({"BUILD_TIME", "RUN_AND_BUILD_TIME", "UNSET"})
RUN_SCOPES = frozenset({"RUN_TIME", "RUN_AND_BUILD_TIME", "UNSET"})


@dataclass(frozen=True)
class SpecDiff:
    rebuild: frozenset[str]
    redeploy: frozenset[str]
    removed: frozenset[str]
    routing_changed: bool
    app_changed: frozenset[str] = frozenset()

    @property
    def changed(self) -> bool:
        return bool(self.rebuild or self.redeploy or self.removed or self.routing_changed or self.app_changed)


def diff(old: Json, new: Json) -> SpecDiff:
    old, new = effective(old), effective(new)
    before, after = _by_name(old), _by_name(new)
    rebuild: set[str] = set()
    redeploy: set[str] = set()
    for name, (kind, component) in after.items():
        previous = before.get(name)
        if previous is None or previous[0] != kind:
            rebuild.add(name)
        elif _needs_build(kind, previous[1], component, old, new):
            rebuild.add(name)
        elif kind == "databases" and previous[1] != component:
            redeploy.add(name)
        elif kind in RUN_KINDS and _run_view(previous[1], old) != _run_view(component, new):
            redeploy.add(name)
    routing = any(old.get(key) != new.get(key) for key in ("ingress", "domains"))
    app_keys = (old.keys() | new.keys()) - set(KINDS) - {"ingress", "domains"}
    app_changed = frozenset(key for key in app_keys if old.get(key) != new.get(key))
    return SpecDiff(frozenset(rebuild), frozenset(redeploy), frozenset(before.keys() - after.keys()), routing,
                    app_changed)


def _by_name(spec: Json) -> dict[str, tuple[str, Json]]:
    return {c["name"]: (kind, c) for kind in KINDS for c in spec.get(kind) or [] if isinstance(c.get("name"), str)}


def _needs_build(kind: str, old_c: Json, new_c: Json, old: Json, new: Json) -> bool:
    if kind == "databases":
        return False
    if kind in BUILT_WHOLE:
        # Their run-time envs are baked in too (functions) or unused (static sites): any change rebuilds.
        return old_c != new_c or _envs(old, old_c, ALL_SCOPES) != _envs(new, new_c, ALL_SCOPES)
    if any(old_c.get(key) != new_c.get(key) for key in BUILD_KEYS):
        return True
    return _envs(old, old_c, BUILD_SCOPES) != _envs(new, new_c, BUILD_SCOPES)


def _run_view(component: Json, spec: Json) -> tuple[Json, dict[str, tuple[Any, Any]]]:
    settings = {k: v for k, v in component.items() if k not in BUILD_KEYS and k != "envs"}
    return settings, _envs(spec, component, RUN_SCOPES)


def _envs(spec: Json, component: Json, scopes: frozenset[str]) -> dict[str, tuple[Any, Any]]:
    """The effective variables in the given scopes: app-level ones, overridden by the component's."""
    merged: dict[str, tuple[Any, Any]] = {}
    for env in [*(spec.get("envs") or []), *(component.get("envs") or [])]:
        if env.get("scope", "UNSET") in scopes:
            merged[env["key"]] = (env.get("value"), env.get("type"))
    return merged
