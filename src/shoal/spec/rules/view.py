"""Defensive read access to a decoded spec for the rules.

Rules run on the validated dump when the models accept the spec, and on the raw input when they
do not, so that a type error in one place does not hide a rule problem elsewhere. Every accessor
therefore tolerates values of the wrong type by treating them as absent.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

COMPONENT_KINDS = ("services", "static_sites", "workers", "jobs", "functions")
COMPUTE_KINDS = ("services", "workers", "jobs")
ALL_KINDS = (*COMPONENT_KINDS, "databases")

KIND_LABELS = {
    "services": "services",
    "static_sites": "static sites",
    "workers": "workers",
    "jobs": "jobs",
    "functions": "functions",
    "databases": "databases",
}


def join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def entries(parent: Json, key: str, base: str = "") -> list[tuple[str, Json]]:
    """The objects in ``parent[key]`` with their paths (``base.key[i]``)."""
    value = parent.get(key)
    path = join(base, key)
    if isinstance(value, list):
        return [(f"{path}[{i}]", item) for i, item in enumerate(value) if isinstance(item, dict)]
    if isinstance(value, dict) and value:
        # A lone object where a list belongs is a type problem already; diagnose its content anyway.
        return [(path, value)]
    return []


def components(spec: Json, kinds: tuple[str, ...] = COMPONENT_KINDS) -> list[tuple[str, str, Json]]:
    """``(kind, path, component)`` for every component of the given kinds, in spec order."""
    return [(kind, path, item) for kind in kinds for path, item in entries(spec, kind)]


def obj(parent: Json, key: str) -> Json | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def text(parent: Json, key: str) -> str | None:
    value = parent.get(key)
    return value if isinstance(value, str) else None


def number(parent: Json, key: str) -> int | None:
    value = parent.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def flag(parent: Json, key: str) -> bool:
    """True only for an explicit true (a bool, or the string spelling some clients send)."""
    value = parent.get(key)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def texts(parent: Json, key: str) -> list[str]:
    value = parent.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def numbers(parent: Json, key: str) -> list[int]:
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
