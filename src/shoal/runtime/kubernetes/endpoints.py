"""A Service's ready endpoints, as they change: where shoal's ingress sends the app's traffic.

Endpoints (``v1``) are served by every cluster shoal targets (EndpointSlices are ``discovery.k8s.io/v1``
only from 1.21). Only ready addresses count: a pod failing its readiness probe moves to
``notReadyAddresses`` and gets no traffic, as behind a Kubernetes Service.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shoal.runtime.kubernetes.connection import Kube
from shoal.runtime.kubernetes.errors import RetryIn
from shoal.runtime.kubernetes.watch import events


@dataclass(frozen=True, order=True)
class Address:
    ip: str
    port: int
    pod: str = ""


def ready_addresses(endpoints: dict[str, Any] | None, port_name: str | None = None) -> tuple[Address, ...]:
    """The ready (ip, port) pairs of an Endpoints object, sorted; ``port_name`` picks one named port."""
    found: set[Address] = set()
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if port_name is None or p.get("name") == port_name]
        for address in subset.get("addresses") or []:
            pod = ((address.get("targetRef") or {}).get("name")) or ""
            found.update(Address(address["ip"], int(p["port"]), pod) for p in ports[:1])
    return tuple(sorted(found))


def watch_endpoints(kube: Kube, namespace: str, service: str, stop: threading.Event,
                    port_name: str | None = None, window: int = 5) -> Iterator[tuple[Address, ...]]:
    """Yield the ready addresses now, then each time they change, until ``stop`` is set.

    A broken watch is resumed (listing afresh when its version is too old); errors that persist are
    the caller's to see: each RetryIn is raised after the stream it broke.
    """
    path = f"/api/v1/namespaces/{namespace}/endpoints"
    by_name = ("fieldSelector", f"metadata.name={service}")
    last: tuple[Address, ...] | None = None
    while not stop.is_set():
        listing = kube.request("GET", path, [by_name])
        items = listing.get("items") or []
        version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        current = ready_addresses(items[0] if items else None, port_name)
        if current != last:
            last = current
            yield current
        while not stop.is_set():
            try:
                relist = False
                for kind, obj in events(kube, path, by_name, version, window):
                    if kind == "GONE":
                        relist = True
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if kind == "BOOKMARK":
                        continue
                    current = ready_addresses(None if kind == "DELETED" else obj, port_name)
                    if current != last:
                        last = current
                        yield current
                    if stop.is_set():
                        return
                if relist:
                    break
            except RetryIn:
                if stop.wait(1.0):
                    return
                break
