"""Process environments from the spec's ``envs`` (pure).

App-level variables apply to every component; a component variable with the same key wins.
``scope`` decides where a variable is seen: BUILD_TIME at build, RUN_TIME at run,
RUN_AND_BUILD_TIME (the default) at both. ``PORT`` is the service's port unless the user set it.
``value_of`` turns a variable into its final value (decrypting secrets, resolving bindables).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

BUILD_SCOPES = frozenset({"BUILD_TIME", "RUN_AND_BUILD_TIME", "UNSET", ""})
RUN_SCOPES = frozenset({"RUN_TIME", "RUN_AND_BUILD_TIME", "UNSET", ""})
ValueOf = Callable[[Mapping[str, Any]], str]


def plain_value(var: Mapping[str, Any]) -> str:
    return "" if var.get("value") is None else str(var["value"])


def _layered(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any], scopes: frozenset[str],
             value_of: ValueOf) -> dict[str, str]:
    merged: dict[str, Mapping[str, Any]] = {}
    for source in (app_spec.get("envs") or [], component_spec.get("envs") or []):
        for var in source:
            if str(var.get("scope") or "RUN_AND_BUILD_TIME") in scopes and var.get("key"):
                merged[str(var["key"])] = var
    return {key: value_of(var) for key, var in merged.items()}


def build_env(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any],
              value_of: ValueOf = plain_value) -> dict[str, str]:
    return _layered(app_spec, component_spec, BUILD_SCOPES, value_of)


def run_env(app_spec: Mapping[str, Any], component_spec: Mapping[str, Any], port: int | None,
            value_of: ValueOf = plain_value) -> dict[str, str]:
    env = _layered(app_spec, component_spec, RUN_SCOPES, value_of)
    if port is not None:
        env.setdefault("PORT", str(port))
    return env
