"""Type-check a decoded spec with the models and turn pydantic's errors into ``Problem``s.

Paths use the wire names with indexes (``services[1].routes[0].path``) and messages name what
was expected, so they read like the rule problems they are reported with.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shoal.spec.models import AppSpec
from shoal.spec.problems import Problem

_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXPECTED = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "int_parsing_size": "expected an integer of reasonable size",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "list_type": "expected an array",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dict_type": "expected an object",
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_unicode": "expected a valid unicode string",
}


def parse(raw: object) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The validated spec as plain JSON values (nulls dropped), or the type problems found."""
    if not isinstance(raw, dict):
        return None, [Problem("", f"an app spec must be a JSON object, not {_json_type(raw)}")]
    try:
        model = AppSpec.model_validate(raw)
    except ValidationError as error:
        return None, [to_problem(detail) for detail in error.errors(include_url=False, include_input=False)]
    return model.model_dump(mode="json", exclude_none=True), []


def to_problem(detail: ErrorDetails) -> Problem:
    return Problem(loc_path(detail["loc"]), _message(detail))


def loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        elif isinstance(part, str) and _FIELD_RE.match(part):
            path = f"{path}.{part}" if path else part
        else:
            # An unknown key that is not a plain name ("", "a.b", "x y") is quoted so the path stays unambiguous.
            path += f"[{json.dumps(str(part)[:64])}]"
    return path


def _message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", '"')
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "less_than_equal": ("must be at most", "le"),
        "greater_than": ("must be greater than", "gt"),
        "less_than": ("must be less than", "lt"),
        "string_too_long": ("must be at most {} characters", "max_length"),
        "string_too_short": ("must be at least {} characters", "min_length"),
    }
    if kind in bounds:
        text, key = bounds[kind]
        return text.format(ctx.get(key)) if "{}" in text else f"{text} {ctx.get(key)}"
    message = str(detail.get("msg", "is invalid"))
    return message[:1].lower() + message[1:]


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
