"""Request bodies: size-limited reading, JSON or YAML decoding, and strict top-level fields."""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.requests import Request

from shoal.core.errors import BadRequest, PayloadTooLarge
from shoal.core.unicode import invalid_path
from shoal.spec.text import load_yaml

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
# Past the limit the rest of an oversized body is still read (and dropped) so the client gets the
# 413 instead of a reset connection — but only this far.
_DRAIN_LIMIT = 64 * 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            too_large = True
        if too_large:
            if size > _DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if too_large:
        raise PayloadTooLarge(f"request body too large: the limit is {limit // 1024} KiB")
    return b"".join(chunks)


def _is_yaml(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in YAML_TYPES


def decode(raw: bytes, content_type: str) -> object:
    """Decode a JSON or YAML document; the message of a failure says where the document broke.

    Every string in it must be valid Unicode: a lone surrogate (``"\\udfff"``) could be stored but
    never encoded again, so it is refused here with the path of the field that holds it."""
    if not raw.strip():
        raise BadRequest("error parsing request body: the body is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"error parsing request body: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    document = _yaml(text) if _is_yaml(content_type) else _json(text)
    path = invalid_path(document)
    if path is not None:
        where = f'field "{path}"' if path else "the body"
        raise BadRequest(f"error parsing request body: {where} is not valid "
                         "Unicode: it holds an unpaired surrogate (a \\ud800-\\udfff escape without its pair)")
    return document


def _yaml(text: str) -> object:
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = str(getattr(exc, "problem", exc))
        if "invalid Unicode character escape" in problem:  # libyaml's words for a lone \\ud800-\\udfff
            problem = "an escape there is not valid Unicode (an unpaired surrogate, or past U+10FFFF)"
        raise BadRequest(f"error parsing request body: invalid YAML{where}: {problem}") from exc
    except RecursionError as exc:
        raise BadRequest("error parsing request body: the document is nested too deeply") from exc


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"error parsing request body: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from exc
    except RecursionError as exc:
        raise BadRequest("error parsing request body: the document is nested too deeply") from exc


async def read_object(request: Request, limit: int, allowed: set[str], required: set[str],
                      optional_body: bool = False) -> dict[str, Any]:
    """A request body that must be an object with only the ``allowed`` fields and every ``required`` one.

    With ``optional_body`` an empty body or ``null`` means ``{}`` (godo sends ``null`` for some POSTs).
    """
    raw = await read_body(request, limit)
    if optional_body and raw.strip() in (b"", b"null"):
        return {}
    document = decode(raw, request.headers.get("content-type", ""))
    if not isinstance(document, dict):
        raise BadRequest(f"error parsing request body: expected an object, got {_kind(document)}")
    unknown = sorted(str(k) for k in document if k not in allowed)
    if unknown:
        raise BadRequest(f"error parsing request body: unknown field(s) {', '.join(repr(k) for k in unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    missing = sorted(k for k in required if document.get(k) is None)
    if missing:
        raise BadRequest(f"error parsing request body: missing required field(s) {', '.join(missing)}")
    return document


def optional_bool(document: dict[str, Any], key: str) -> bool:
    value = document.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"error parsing request body: field {key!r} must be a boolean, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def optional_str_list(document: dict[str, Any], key: str) -> list[str]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"error parsing request body: field {key!r} must be an array of strings")
    return value
