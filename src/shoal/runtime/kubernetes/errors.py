"""What a Kubernetes step says when it cannot finish now: retry later, or give up (controller-runtime's
``Result{RequeueAfter}`` and a terminal error, as Kopf's ``TemporaryError``/``PermanentError``).

    KubeError
    ├── RetryIn(seconds, reason)   the server is busy, a write raced another, an object is still going away
    └── GiveUp(reason)             the server refused what we sent (bad object, forbidden): retrying cannot help

``from_api_error`` sorts the client's ``ApiException`` (and connection errors) into these by status.
"""

from __future__ import annotations

import json
from typing import Any

# Statuses worth retrying: conflict (a write raced another), too many requests, the server's own trouble.
RETRIABLE = {409, 429, 500, 502, 503, 504}


class KubeError(Exception):
    """Base of the Kubernetes backend's own errors."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the HTTP status the API answered, when it answered


class RetryIn(KubeError):
    """Try the step again in ``seconds``; nothing is wrong with what we asked for."""

    def __init__(self, seconds: float, reason: str, status: int | None = None) -> None:
        super().__init__(reason, status)
        self.seconds = seconds


class GiveUp(KubeError):
    """The step cannot succeed as asked; ``reason`` is the server's own message (it names the field)."""


def server_message(body: str | bytes | None) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, else the body itself (shortened)."""
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        status: Any = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    return str(status.get("message") or text)[:500] if isinstance(status, dict) else text[:500]


def from_status(status: int, body: str | bytes | None, doing: str, retry_after: float | None = None) -> KubeError:
    """A response status sorted into retry-or-give-up, with the server's reason."""
    message = server_message(body) or f"HTTP {status}"
    if status in RETRIABLE:
        seconds = retry_after if retry_after is not None else (1.0 if status == 409 else 5.0)
        return RetryIn(seconds, f"{doing}: {message}", status)
    return GiveUp(f"{doing}: {message}", status)


def from_api_error(exc: Exception, doing: str) -> KubeError:
    """The client's ``ApiException`` (status, body, headers) or a connection error, as ours."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        headers = getattr(exc, "headers", None) or {}
        retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
        seconds = float(retry_after) if retry_after and str(retry_after).isdigit() else None
        return from_status(status, getattr(exc, "body", None), doing, seconds)
    return RetryIn(5.0, f"{doing}: cannot reach the Kubernetes API ({exc})")
