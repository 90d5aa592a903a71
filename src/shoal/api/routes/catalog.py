"""The catalogue: regions, instance sizes, and the deprecated tiers godo and doctl still call."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.context import authorized
from shoal.api.responses import render
from shoal.core.errors import NotFound
from shoal.spec.catalog import INSTANCE_SIZES, INSTANCE_SIZES_BY_SLUG, REGIONS, TIERS, TIERS_BY_SLUG

_REGIONS = {"regions": [r.as_wire() for r in REGIONS]}
_SIZES = {"instance_sizes": [s.as_wire() for s in INSTANCE_SIZES], "discount_percent": 0}
_TIERS = {"tiers": [t.as_wire() for t in TIERS]}


async def apps_list_regions(request: Request) -> Response:
    authorized(request, "app:read")
    return render(request, _REGIONS)


async def apps_list_instance_sizes(request: Request) -> Response:
    authorized(request, "app:read")
    return render(request, _SIZES)


async def apps_get_instance_size(request: Request) -> Response:
    authorized(request, "app:read")
    slug = request.path_params["slug"]
    size = INSTANCE_SIZES_BY_SLUG.get(slug)
    if size is None:
        raise NotFound(f"instance size {slug!r} not found")
    return render(request, {"instance_size": size.as_wire()})


async def apps_list_tiers(request: Request) -> Response:
    authorized(request, "app:read")
    return render(request, _TIERS)


async def apps_get_tier(request: Request) -> Response:
    authorized(request, "app:read")
    slug = request.path_params["slug"]
    tier = TIERS_BY_SLUG.get(slug)
    if tier is None:
        raise NotFound(f"tier {slug!r} not found")
    return render(request, {"tier": tier.as_wire()})


routes = [
    Route("/v2/apps/regions", apps_list_regions, methods=["GET"]),
    Route("/v2/apps/tiers/instance_sizes", apps_list_instance_sizes, methods=["GET"]),
    Route("/v2/apps/tiers/instance_sizes/{slug}", apps_get_instance_size, methods=["GET"]),
    Route("/v2/apps/tiers", apps_list_tiers, methods=["GET"]),
    Route("/v2/apps/tiers/{slug}", apps_get_tier, methods=["GET"]),
]
