"""Signed, expiring tokens for URLs that carry their own credential (log downloads and streams)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from shoal.core.errors import Unauthorized


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("signing keys must be at least 32 bytes")
        self._key = key

    def sign(self, payload: dict[str, Any], ttl_seconds: int, now: float | None = None) -> str:
        body = _b64(json.dumps({**payload, "exp": int((now or time.time()) + ttl_seconds)},
                               separators=(",", ":")).encode())
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        body, _, signature = token.partition(".")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not signature or not hmac.compare_digest(signature, expected):
            raise Unauthorized("this link's token is not valid")
        try:
            payload: dict[str, Any] = json.loads(_unb64(body))
        except ValueError as exc:
            raise Unauthorized("this link's token is not valid") from exc
        if payload.get("exp", 0) < (now or time.time()):
            raise Unauthorized("this link has expired; ask the API for a new one")
        return payload
