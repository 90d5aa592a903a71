"""The plan: what a spec asks the runtime to build and run, component by component.

It also holds the rule for what runs while the app is offline (``spec.maintenance``, reference
§4.10): maintenance mode (``enabled``) keeps everything running behind the offline page; an
archived app (``archive``, which implies ``enabled``) runs nothing but its dev databases, whose
data must survive un-archiving. The deployer, both runtimes and the API read the rule from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Spec list key → component kind, in the order DigitalOcean builds and deploys them.
KINDS: tuple[tuple[str, str], ...] = (
    ("services", "service"),
    ("workers", "worker"),
    ("jobs", "job"),
    ("static_sites", "static_site"),
    ("functions", "function"),
)
# The kinds a deployment object lists with their commit hashes (apps_deployment.services[] ...).
DEPLOYMENT_LISTS = {"service": "services", "worker": "workers", "job": "jobs", "static_site": "static_sites",
                    "function": "functions"}
MESSAGE_BASE = {"service": "service", "worker": "worker", "job": "job", "static_site": "static site",
                "function": "functions", "database": "database"}


@dataclass(frozen=True)
class Component:
    name: str
    kind: str
    spec: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def job_kind(self) -> str:
        kind = str(self.spec.get("kind") or "POST_DEPLOY")
        return "POST_DEPLOY" if kind == "UNSPECIFIED" else kind

    @property
    def builds(self) -> bool:
        return self.kind != "database"

    @property
    def runs_continuously(self) -> bool:
        return self.kind in ("service", "worker")

    @property
    def deploys(self) -> bool:
        """Whether a deployment brings it up (its ``deploy.components`` step); other jobs only run once."""
        return self.kind in ("service", "worker", "static_site", "function") or \
            (self.kind == "job" and self.job_kind == "SCHEDULED")


def components(spec: dict[str, Any]) -> list[Component]:
    found = [Component(str(c.get("name")), kind, c) for key, kind in KINDS for c in spec.get(key) or []]
    found += [Component(str(d.get("name")), "database", d) for d in spec.get("databases") or []]
    return found


def jobs_of_kind(parts: list[Component], job_kind: str) -> list[Component]:
    return [c for c in parts if c.kind == "job" and c.job_kind == job_kind]


def archived(spec: dict[str, Any]) -> bool:
    """``maintenance.archive``: the app is archived, its components stopped."""
    return bool((spec.get("maintenance") or {}).get("archive"))


def offline(spec: dict[str, Any]) -> bool:
    """Whether the ingress answers every request with the offline page: maintenance mode or archived."""
    return archived(spec) or bool((spec.get("maintenance") or {}).get("enabled"))


def running(spec: dict[str, Any]) -> list[Component]:
    """The components a deployment of ``spec`` builds and runs: all of them unless the app is archived,
    then only its databases."""
    kept = archived(spec)
    return [c for c in components(spec) if not kept or c.kind == "database"]


def stopped(spec: dict[str, Any]) -> list[Component]:
    """The components an archived app keeps stopped (none otherwise), in ``components`` order."""
    return [c for c in components(spec) if c.kind != "database"] if archived(spec) else []
