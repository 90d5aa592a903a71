"""Instances and ports: sizes, counts, autoscaling, health-check ports, static site documents."""

from __future__ import annotations

from collections.abc import Iterator

from shoal.spec import catalog
from shoal.spec.problems import Problem
from shoal.spec.rules.view import COMPUTE_KINDS, Json, components, entries, number, numbers, obj, text

DEFAULT_HTTP_PORT = 8080
MAX_INSTANCES = 250  # larger counts are a type problem already


def check_compute(spec: Json) -> Iterator[Problem]:
    for _kind, path, component in components(spec, COMPUTE_KINDS):
        yield from _size_problems(path, component)
    for path, service in entries(spec, "services"):
        yield from _port_problems(path, service)
    for path, site in entries(spec, "static_sites"):
        if site.get("catchall_document") is not None and site.get("error_document") is not None:
            yield Problem(f"{path}.catchall_document", "only one of catchall_document or error_document may be set")


def _size_problems(path: str, component: Json) -> Iterator[Problem]:
    slug = component.get("instance_size_slug")
    size = catalog.INSTANCE_SIZES_BY_SLUG.get(slug if isinstance(slug, str) else catalog.DEFAULT_INSTANCE_SIZE)
    if slug is not None and size is None:
        shown = slug[:64] if isinstance(slug, str) else slug
        yield Problem(f"{path}.instance_size_slug", f'unknown instance size "{shown}"')
    count = number(component, "instance_count")
    autoscaling = obj(component, "autoscaling")
    if autoscaling is not None and component.get("instance_count") is not None:
        yield Problem(f"{path}.instance_count", "must not be set when autoscaling is used")
    if autoscaling is not None:
        yield from _autoscaling_problems(f"{path}.autoscaling", autoscaling, size)
    # DigitalOcean's own client tests scale legacy single-instance slugs (basic-xxs) to 2 and
    # pass, so only the current slugs are held to their single-instance flag (reference §3.4) —
    # and only when the user chose the size: the default is older docs' basic-xxs, which scales.
    if count is not None and 1 < count <= MAX_INSTANCES and slug is not None and size is not None \
            and size.single_instance_only and not size.deprecation_intent:
        yield Problem(
            f"{path}.instance_count",
            f'instance size "{size.slug}" runs a single instance; choose a larger size to run {count}',
        )


def _autoscaling_problems(path: str, autoscaling: Json, size: catalog.InstanceSize | None) -> Iterator[Problem]:
    if size is not None and not size.scalable:
        yield Problem(path, f'instance size "{size.slug}" does not support autoscaling; choose a dedicated CPU size')
    low = number(autoscaling, "min_instance_count")
    high = number(autoscaling, "max_instance_count")
    for key, value in (("min_instance_count", low), ("max_instance_count", high)):
        if autoscaling.get(key) is None:
            yield Problem(f"{path}.{key}", "is required")
    if low is not None and high is not None and low > high:
        yield Problem(f"{path}.min_instance_count", f"must not exceed max_instance_count ({high})")


def _port_problems(path: str, service: Json) -> Iterator[Problem]:
    internal = numbers(service, "internal_ports")
    http_port = number(service, "http_port")
    if http_port is None and (not internal or service.get("routes") or obj(service, "cors") is not None):
        http_port = DEFAULT_HTTP_PORT  # as normalize fills it: a routed service listens on 8080
    if http_port is not None and http_port in internal:
        yield Problem(f"{path}.internal_ports", f"internal port {http_port} must not match the http_port")
    seen: set[int] = set()
    for index, port in enumerate(internal):
        if port in seen:
            yield Problem(f"{path}.internal_ports[{index}]", f"port {port} is listed twice")
        seen.add(port)
    # DigitalOcean accepts a health check port that is neither the http_port nor an internal port
    # (issue 13 item 6), and an empty http_path (a TCP check, as if unset): neither is refused.
