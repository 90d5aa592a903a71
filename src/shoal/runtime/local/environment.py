"""Process environments from the spec's ``envs`` (pure).

App-level variables apply to every component; a component variable with the same key wins.
``scope`` decides where a variable is seen: BUILD_TIME at build, RUN_TIME at run,
RUN_AND_BUILD_TIME (the default) at both. ``PORT`` is the service's port unless the user set it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BUILD_SCOPES = frozenset({"BUILD_TIME", "RUN_AND_BUILD_TIME", "UNSET", ""})
RUN_SCOPES = frozenset({"RUN_TIME", "RUN_AND_BUILD_TIME", "UNSET", ""})


def _layered(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any], scopes: frozenset[str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in (app_spec.get("envs") or [], component_spec.get("envs") or []):
        for var in source:
            if str(var.get("scope") or "RUN_AND_BUILD_TIME") in scopes and var.get("key"):
                merged[str(var["key"])] = "" if var.get("value") is None else str(var["value"])
    return merged


def build_env(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any]) -> dict[str, str]:
    return _layered(app_spec, component_spec, BUILD_SCOPES)


def run_env(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any], port: int | None) -> dict[str, str]:
    env = _layered(app_spec, component_spec, RUN_SCOPES)
    if port is not None:
        env.setdefault("PORT", str(port))
    return env
