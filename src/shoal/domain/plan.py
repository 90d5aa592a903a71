"""The plan: what a spec asks the runtime to build and run, component by component."""

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


def components(spec: dict[str, Any]) -> list[Component]:
    found = [Component(str(c.get("name")), kind, c) for key, kind in KINDS for c in spec.get(key) or []]
    found += [Component(str(d.get("name")), "database", d) for d in spec.get("databases") or []]
    return found


def jobs_of_kind(parts: list[Component], job_kind: str) -> list[Component]:
    return [c for c in parts if c.kind == "job" and c.job_kind == job_kind]
