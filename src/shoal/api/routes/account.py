"""``/v2/account``: who the token belongs to."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.context import authorized
from shoal.api.responses import render
from shoal.api.wire import account_wire


async def account_get(request: Request) -> Response:
    principal = authorized(request, "account:read")
    return render(request, {"account": account_wire(principal.account)})


routes = [Route("/v2/account", account_get, methods=["GET"])]
