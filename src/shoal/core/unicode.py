"""Strings that are not Unicode: finding them in decoded documents, and scrubbing them from old rows.

JSON's ``\\udfff`` escape (and YAML's) decodes to a lone surrogate, which Python keeps in a
``str`` but no UTF-8 encoder, database driver or process environment accepts. Such a value must
be refused where it enters (a 400 naming the field), never stored to fail every later read with a
500. Rows stored before that rule existed are read back with the surrogates replaced by U+FFFD.
"""

from __future__ import annotations

import json
import re
from typing import Any

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LONE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def valid(text: str) -> bool:
    """Whether ``text`` holds only Unicode scalar values (no unpaired surrogate)."""
    return text.isascii() or _LONE.search(text) is None


def invalid_path(document: object) -> str | None:
    """The path (``services[0].envs[1].value``) of the first string in ``document`` that is not
    valid Unicode, ``""`` for the document itself, or ``None`` when every string is valid."""
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not valid(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                if not valid(name):
                    return f"{path} (a key)" if path else "(a key)"
                stack.append((_child(path, name), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None


def _child(path: str, key: str) -> str:
    if _KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key[:64])}]"


def scrub(value: Any) -> Any:
    """``value`` with every unpaired surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value if valid(value) else _LONE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads`` for stored documents: a row written with a lone surrogate escape reads back
    with U+FFFD in its place, so one bad value cannot make its whole account unreadable."""
    value = json.loads(text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return scrub(value) if "\\ud" in text or "\\uD" in text else value
