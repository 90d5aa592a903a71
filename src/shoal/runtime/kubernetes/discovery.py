"""What the server offers: its version, the API version to use for kinds that moved, and REST paths.

Clusters differ: on 1.20 CronJob is only ``batch/v1beta1`` (``batch/v1`` since 1.21) and the HPA with
metrics is ``autoscaling/v2beta2`` (``autoscaling/v2`` since 1.23); Ingress went to
``networking.k8s.io/v1`` in 1.19. A group version being offered is not enough (1.20 serves ``batch/v1``
for Jobs only), so the choice looks at the kinds each group version lists. Server-side apply is on by
default from 1.18 (beta; GA in 1.22).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shoal.runtime.kubernetes.connection import Kube
from shoal.runtime.kubernetes.errors import GiveUp

# Kind → API versions, newest first; the first one the server lists the kind under is used.
PREFERENCES: dict[str, tuple[str, ...]] = {
    "CronJob": ("batch/v1", "batch/v1beta1"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "autoscaling/v2beta2"),
    "Ingress": ("networking.k8s.io/v1", "networking.k8s.io/v1beta1"),
}
SERVER_SIDE_APPLY_SINCE = (1, 18)


@dataclass(frozen=True)
class Kind:
    """Where one kind lives: ``/apis/GROUP/VERSION[/namespaces/NS]/PLURAL``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced:
            if namespace is None:
                raise GiveUp(f"{self.kind} is namespaced: a namespace is needed")
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}" + (f"/{name}" if name else "")


@dataclass(frozen=True)
class ApiVersions:
    """The choices the renderer needs, made once per server."""

    server: tuple[int, int]
    cronjob: str
    hpa: str
    ingress: str
    server_side_apply: bool

    @property
    def cronjob_time_zone(self) -> bool:
        """``spec.timeZone`` on CronJobs: beta (on by default) from 1.25, GA in 1.27."""
        return self.server >= (1, 25)


def parse_server_version(major: str, minor: str) -> tuple[int, int]:
    """``/version``'s major and minor (minor may read ``"20+"`` on vendor builds)."""
    digits = [re.match(r"\d+", part) for part in (major, minor)]
    if not all(digits):
        raise GiveUp(f"cannot read the server version {major}.{minor}")
    return int(digits[0].group()), int(digits[1].group())  # type: ignore[union-attr]


def choose(offered: Mapping[str, set[str]], server: tuple[int, int]) -> ApiVersions:
    """Pick API versions from ``offered`` (group version → the kinds it lists)."""
    chosen: dict[str, str] = {}
    for kind, versions in PREFERENCES.items():
        found = next((v for v in versions if kind in offered.get(v, set())), None)
        if found is None:
            raise GiveUp(f"the cluster offers no {kind} API (looked for {', '.join(versions)})")
        chosen[kind] = found
    return ApiVersions(server=server, cronjob=chosen["CronJob"], hpa=chosen["HorizontalPodAutoscaler"],
                       ingress=chosen["Ingress"], server_side_apply=server >= SERVER_SIDE_APPLY_SINCE)


class Catalog:
    """The server's kinds, read lazily one group version at a time and kept for the connection's life."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._kinds: dict[str, dict[str, Kind]] = {}
        self._versions: ApiVersions | None = None

    def group_versions(self) -> set[str]:
        core = self.kube.request("GET", "/api").get("versions", [])
        groups = self.kube.request("GET", "/apis").get("groups", [])
        return set(core) | {v["groupVersion"] for g in groups for v in g.get("versions", [])}

    def kinds_of(self, group_version: str) -> dict[str, Kind]:
        """The kinds ``group_version`` lists (empty when the server does not offer it)."""
        if group_version not in self._kinds:
            path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
            listing = self.kube.get_or_none(path) or {}
            self._kinds[group_version] = {
                r["kind"]: Kind(group_version, r["kind"], r["name"], bool(r.get("namespaced")))
                for r in listing.get("resources", []) if "/" not in r["name"]}  # skip subresources
        return self._kinds[group_version]

    def kind(self, api_version: str, kind: str) -> Kind:
        found = self.kinds_of(api_version).get(kind)
        if found is None:
            raise GiveUp(f"the cluster does not serve {kind} in {api_version}")
        return found

    def versions(self) -> ApiVersions:
        if self._versions is None:
            version = self.kube.request("GET", "/version")
            server = parse_server_version(str(version.get("major", "")), str(version.get("minor", "")))
            offered = self.group_versions()
            wanted = {v for versions in PREFERENCES.values() for v in versions if v in offered}
            self._versions = choose({v: set(self.kinds_of(v)) for v in wanted}, server)
        return self._versions
