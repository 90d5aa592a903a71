"""``page``/``per_page`` parsing and DigitalOcean's ``links.pages`` and ``meta.total``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL, QueryParams

from shoal.core.errors import BadRequest

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
MAX_PAGE = 2**31 - 1  # keeps offsets inside what every database's integers hold


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int


def _int_param(params: QueryParams, name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit():  # an empty value too: Go's strconv, which DigitalOcean parses with, refuses it
        raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"query parameter {name!r} must be {bounds}, got {value}")
    return value


def bool_param(params: QueryParams, name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"query parameter {name!r} must be true or false, got {raw!r}")


def page_request(params: QueryParams) -> PageRequest:
    return PageRequest(page=_int_param(params, "page", 1, 1, MAX_PAGE),
                       per_page=_int_param(params, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))


def links(url: URL, request: PageRequest, total: int) -> dict[str, Any]:
    """Only the links that make sense: none of first/prev on page 1, none of next/last on the last page."""
    last = max(1, math.ceil(total / request.per_page))
    pages: dict[str, str] = {}

    def at(page: int) -> str:
        return str(url.include_query_params(page=page, per_page=request.per_page))

    if request.page > 1:
        pages["first"] = at(1)
        pages["prev"] = at(min(request.page - 1, last))
    if request.page < last:
        pages["next"] = at(request.page + 1)
        pages["last"] = at(last)
    return {"pages": pages}
