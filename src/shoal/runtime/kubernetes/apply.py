"""Idempotent apply: make an object on the server say what we rendered, whatever was there before.

Server-side apply (``PATCH`` with ``application/apply-patch+yaml``, field manager ``shoal``, conflicts
forced: shoal owns what it renders) where the server offers it. Elsewhere: read the object, create it
when absent, leave it alone when every field we render already has our value, else replace it with the
``resourceVersion`` we read — a write that raced another fails with 409, which says ``RetryIn``, and
the next round reads again. Applying the same object twice changes nothing (its resourceVersion
stays), which is what lets a reconcile be re-run after a crash.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoal.runtime.kubernetes.connection import Kube
from shoal.runtime.kubernetes.discovery import Catalog, Kind
from shoal.runtime.kubernetes.errors import GiveUp, KubeError, RetryIn

FIELD_MANAGER = "shoal"
APPLY_PATCH = "application/apply-patch+yaml"
# Fields the server assigns and will not let a replace clear (kept from the live object).
SERVER_ASSIGNED = {("v1", "Service"): (("spec", "clusterIP"), ("spec", "clusterIPs"))}


@dataclass(frozen=True)
class Ref:
    """Which object: apiVersion, kind, namespace (None for cluster-wide kinds) and name."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Ref:
        meta = obj.get("metadata") or {}
        if not obj.get("apiVersion") or not obj.get("kind") or not meta.get("name"):
            raise GiveUp("an object to apply needs apiVersion, kind and metadata.name")
        return cls(str(obj["apiVersion"]), str(obj["kind"]), meta.get("namespace"), str(meta["name"]))

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def with_merge_keys(obj: Any) -> Any:
    """``obj`` with ``protocol: TCP`` on every port that lacks one (the server's default anyway).

    Server-side apply on 1.20 refuses a port without it ("associative list with keys has an element
    that omits key field protocol"): ports are keyed by (port, protocol) and 1.20 does not default the
    key before merging. Filling it keeps both apply paths and every server the same.
    """
    if isinstance(obj, dict):
        return {k: ([_with_protocol(p) for p in v] if k == "ports" and isinstance(v, list) else with_merge_keys(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [with_merge_keys(item) for item in obj]
    return obj


def _with_protocol(port: Any) -> Any:
    if isinstance(port, dict) and ("port" in port or "containerPort" in port) and "protocol" not in port:
        return {**port, "protocol": "TCP"}
    return with_merge_keys(port)


def differs(desired: Any, actual: Any) -> bool:
    """Whether ``actual`` lacks any field of ``desired`` or holds another value there.

    Fields only ``actual`` has (server defaults, status, other managers' labels) do not count.
    """
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return True
        return any(key not in actual or differs(value, actual[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return True
        return any(differs(d, a) for d, a in zip(desired, actual))
    return bool(desired != actual)


def _keep_server_assigned(body: dict[str, Any], live: dict[str, Any], ref: Ref) -> None:
    for path in SERVER_ASSIGNED.get((ref.api_version, ref.kind), ()):
        source: Any = live
        for step in path:
            source = source.get(step) if isinstance(source, dict) else None
        if source is None:
            continue
        target = body
        for step in path[:-1]:
            target = target.setdefault(step, {})
        target.setdefault(path[-1], source)


class Applier:
    """Apply, read and delete objects by their JSON, on one connection."""

    def __init__(self, kube: Kube, catalog: Catalog, server_side: bool | None = None) -> None:
        self.kube = kube
        self.catalog = catalog
        self._server_side = server_side

    @property
    def server_side(self) -> bool:
        if self._server_side is None:
            self._server_side = self.catalog.versions().server_side_apply
        return self._server_side

    def _kind(self, ref: Ref) -> Kind:
        return self.catalog.kind(ref.api_version, ref.kind)

    def get(self, ref: Ref) -> dict[str, Any] | None:
        return self.kube.get_or_none(self._kind(ref).path(ref.namespace, ref.name))

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Make the server's object say ``obj``; returns the object as the server now has it."""
        ref = Ref.of(obj)
        kind = self._kind(ref)
        obj = with_merge_keys(obj)
        if self.server_side:
            return self.kube.request("PATCH", kind.path(ref.namespace, ref.name),
                                     [("fieldManager", FIELD_MANAGER), ("force", "true")], obj, APPLY_PATCH)
        return self._create_or_replace(obj, ref, kind)

    def apply_all(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.apply(obj) for obj in objects]

    def _create_or_replace(self, obj: dict[str, Any], ref: Ref, kind: Kind) -> dict[str, Any]:
        live = self.kube.get_or_none(kind.path(ref.namespace, ref.name))
        if live is None:
            try:
                return self.kube.request("POST", kind.path(ref.namespace), [("fieldManager", FIELD_MANAGER)], obj)
            except RetryIn as exc:
                if exc.status == 409:  # created meanwhile by someone else: the next round replaces it
                    raise RetryIn(0.5, f"{ref} appeared while shoal was creating it", 409) from exc
                raise
        if not differs(obj, live):
            return live
        body = copy.deepcopy(obj)
        body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        _keep_server_assigned(body, live, ref)
        return self.kube.request("PUT", kind.path(ref.namespace, ref.name), [("fieldManager", FIELD_MANAGER)], body)

    def delete(self, ref: Ref, propagation: str = "Background") -> bool:
        """Ask for ``ref`` to be deleted (its dependents too); False when it was already gone."""
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self.kube.request("DELETE", self._kind(ref).path(ref.namespace, ref.name), body=options)
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True
