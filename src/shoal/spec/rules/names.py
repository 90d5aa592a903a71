"""Names: the app name, component names (unique across every kind, databases included)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec.problems import Problem
from shoal.spec.rules.view import ALL_KINDS, Json, components, text

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
NAME_RULE = (
    "must be 2 to 32 characters of lowercase letters, digits and dashes, "
    "starting with a letter and not ending with a dash"
)


def check_names(spec: Json) -> Iterator[Problem]:
    name = text(spec, "name")
    if name is not None and not NAME_RE.match(name):
        yield Problem("name", f'"{_clip(name)}" {NAME_RULE}')
    first_use: dict[str, str] = {}
    for _kind, path, component in components(spec, ALL_KINDS):
        name = text(component, "name")
        if name is None:
            continue
        if not NAME_RE.match(name):
            yield Problem(f"{path}.name", f'"{_clip(name)}" {NAME_RULE}')
        elif name in first_use:
            yield Problem(
                f"{path}.name",
                f'component name "{name}" is already used by {first_use[name]}; '
                "names must be unique across all components and databases",
            )
        else:
            first_use[name] = path


def _clip(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[:limit] + "..."
