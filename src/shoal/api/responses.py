"""Response rendering: JSON by default, YAML when the client asks for it with ``Accept``."""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from shoal.api.bodies import YAML_TYPES


def wants_yaml(accept: str) -> bool:
    return any(t.split(";")[0].strip().lower() in YAML_TYPES for t in accept.split(","))


def render(request: Request, payload: Any, status: int = 200) -> Response:
    if wants_yaml(request.headers.get("accept", "")):
        body = yaml.safe_dump(payload, sort_keys=False, allow_unicode=True)
        return Response(body, status_code=status, media_type="application/yaml")
    return json_response(payload, status)


def encode(payload: Any) -> bytes:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate (echoed from a request): escaped, still JSON
        return json.dumps(payload, separators=(",", ":")).encode()


def json_body(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(payload), status_code=status, media_type="application/json", headers=headers)
