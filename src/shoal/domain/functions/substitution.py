"""``${VAR}`` in ``project.yml``, replaced from the functions component's variables.

Substitution is per value, after YAML parsing, so a variable holding ``:`` or a newline cannot change the
document's structure; a variable that is not set is a problem naming the value's path. Its own module because
it is the one rule of the reader that depends on run-time variables (the build reads without them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shoal.domain.functions.model import PROJECT_FILE, ProjectProblem

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(value: Any, env: Mapping[str, str] | None, path: str, problems: list[ProjectProblem]) -> Any:
    """``${VAR}`` in every string of ``value`` replaced from ``env`` (``None``: left as written)."""
    if env is None:
        return value
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                problems.append(ProjectProblem(PROJECT_FILE, path, f"${{{name}}} is not set: add {name} to the "
                                                                   "functions component's envs"))
                return match.group(0)
            return env[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [substitute(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: substitute(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    return value
