"""The one place where errors become DigitalOcean's error body ``{id, message, request_id}``."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException

from shoal.core.errors import ShoalError

log = logging.getLogger("shoal.api")

# Starlette raises HTTPException for routing misses (404, 405); give them DigitalOcean's ids.
_HTTP_IDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 409: "conflict", 413: "request_too_large", 422: "unprocessable_entity",
             429: "too_many_requests"}


def error_body(exc: BaseException, request_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and extra headers for any exception raised while serving a request."""
    headers: dict[str, str] = {}
    if isinstance(exc, ShoalError):
        status, error_id, message = exc.status, exc.error_id, exc.message
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        error_id = _HTTP_IDS.get(status, "server_error" if status >= 500 else "bad_request")
        message = "The resource you were accessing could not be found." if status == 404 else str(exc.detail)
        headers.update(exc.headers or {})
    else:
        log.error("unexpected error serving request %s", request_id, exc_info=exc)
        status, error_id, message = 500, "server_error", "Unexpected server-side error"
    return status, {"id": error_id, "message": message, "request_id": request_id}, headers
