"""Pod logs: what a container printed, and (``follow``) what it prints from now on, line by line.

Kubernetes keeps each container's log on its node and serves it through the API; shoal copies lines into
its own logs API as they come. A followed stream ends when the container ends or ``close()`` is called.
"""

from __future__ import annotations

from typing import Any

from shoal.runtime.kubernetes.connection import Kube, LineStream


def pod_log(kube: Kube, namespace: str, pod: str, container: str | None = None, follow: bool = False,
            since_seconds: int | None = None, tail_lines: int | None = None, timestamps: bool = False,
            previous: bool = False) -> LineStream:
    """A stream of one container's log lines (iterate it; close it to stop following)."""
    query = [(key, value) for key, value in (
        ("container", container), ("follow", "true" if follow else None),
        ("sinceSeconds", str(since_seconds) if since_seconds is not None else None),
        ("tailLines", str(tail_lines) if tail_lines is not None else None),
        ("timestamps", "true" if timestamps else None), ("previous", "true" if previous else None))
        if value is not None]
    return kube.lines(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query, timeout=None if follow else 60)


def pods(kube: Kube, namespace: str, selector: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The pods matching a label selector, oldest first."""
    listing = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods", [("labelSelector", selector)],
                           timeout=timeout)
    items = list(listing.get("items") or [])
    return sorted(items, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
