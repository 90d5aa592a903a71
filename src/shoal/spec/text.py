"""Turn spec text (YAML or JSON, plain or in the ``.do/deploy.template.yaml`` form) into a value.

The only place a spec is parsed from text; ``check`` then validates the value.
"""

from __future__ import annotations

import json

import yaml

from shoal.core.errors import BadRequest


def load_text(text: str) -> object:
    """The decoded spec; a ``{spec: {...}}`` deploy template is unwrapped to its spec."""
    if not text.strip():
        raise BadRequest("the app spec is empty")
    try:
        value: object = json.loads(text)
    except (ValueError, RecursionError):
        value = _load_yaml(text)
    return unwrap_template(value)


def unwrap_template(value: object) -> object:
    if isinstance(value, dict) and "name" not in value and isinstance(value.get("spec"), dict):
        return value["spec"]
    return value


def _load_yaml(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = error.problem or error.context or "malformed YAML"
        raise BadRequest(f"error parsing app spec{where}: {reason}") from error
    except (yaml.YAMLError, RecursionError, ValueError) as error:
        raise BadRequest(f"error parsing app spec: {error}") from error
