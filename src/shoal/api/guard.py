"""The ASGI wrapper every API request passes: request id, authentication, rate limit, headers.

It answers 401 and 429 itself; every other response, success or error, leaves through it and gets
``x-request-id`` and the ``ratelimit-*`` headers added.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.api.errors import error_body
from shoal.api.ratelimit import Quota, RateLimiter
from shoal.api.responses import json_response
from shoal.core.errors import ShoalError, Unauthorized
from shoal.core.ids import new_uuid
from shoal.domain.accounts import Principal

PRINCIPAL_KEY = "shoal.principal"
REQUEST_ID_KEY = "shoal.request_id"

Authenticate = Callable[[str], Principal]
Recall = Callable[[str], Principal | None]


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    values = [v for k, v in headers if k == b"authorization"]
    if not values:
        raise Unauthorized("Unable to authenticate you: no Authorization header; send 'Authorization: Bearer <token>'.")
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Unable to authenticate you: the Authorization header must be 'Bearer <token>'.")
    return token.strip()


class ApiGuard:
    def __init__(self, app: ASGIApp, authenticate: Authenticate, limiter: RateLimiter,
                 is_public: Callable[[str], bool] = lambda path: False,
                 recall: Recall = lambda token: None) -> None:
        self._app = app
        self._authenticate = authenticate
        self._recall = recall
        self._limiter = limiter
        self._is_public = is_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = new_uuid()
        scope[REQUEST_ID_KEY] = request_id
        try:
            quota = await self._admit(scope)
        except ShoalError as exc:
            quota = getattr(exc, "quota", None) or self._limiter.peek(self._client_key(scope))
            await self._refuse(exc, request_id, quota, send)
            return
        await self._app(scope, receive, _with_headers(send, request_id, quota))

    async def _admit(self, scope: Scope) -> Quota:
        if self._is_public(scope["path"]):
            return self._limiter.hit(self._client_key(scope))
        try:
            token = bearer_token(scope["headers"])
            principal = self._recall(token)  # a token seen within the second: no I/O, no thread
            if principal is None:
                principal = await run_in_threadpool(self._authenticate, token)
        except Unauthorized as exc:
            # Failed attempts count against the caller's address, so guessing tokens is rate limited too.
            exc.quota = self._limiter.hit(self._client_key(scope))  # type: ignore[attr-defined]
            raise
        scope[PRINCIPAL_KEY] = principal
        return self._limiter.hit("token:" + principal.token.id)

    @staticmethod
    def _client_key(scope: Scope) -> str:
        client = scope.get("client") or ("unknown", 0)
        return f"addr:{client[0]}"

    @staticmethod
    async def _refuse(exc: ShoalError, request_id: str, quota: Quota, send: Send) -> None:
        status, body, headers = error_body(exc, request_id)
        response = json_response(body, status, {**headers, **quota.headers(), "x-request-id": request_id})
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _with_headers(send: Send, request_id: str, quota: Quota) -> Callable[[Message], Awaitable[None]]:
    extra = [(b"x-request-id", request_id.encode())] + [(k.encode(), v.encode()) for k, v in quota.headers().items()]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


def principal_of(scope: Scope) -> Principal:
    principal: Principal = scope[PRINCIPAL_KEY]
    return principal
