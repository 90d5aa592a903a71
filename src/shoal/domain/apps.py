"""The App record: what the store keeps for an app, independent of the wire format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoal.domain.deployments import Deployment


@dataclass(frozen=True)
class App:
    id: str
    account_id: str
    name: str
    spec: dict[str, Any]
    region: str
    ingress_host: str  # ``<name>-<5 alnum>.<apps domain>``: fixed at create, like DigitalOcean's default ingress
    tier_slug: str
    project_id: str
    created_at: datetime
    updated_at: datetime
    last_deployment_created_at: datetime | None = None
    last_deployment_active_at: datetime | None = None
    active_deployment_id: str | None = None
    pinned_deployment_id: str | None = None
    rollback_base_deployment_id: str | None = None  # what ``revert`` returns to after a pinned rollback
    revision: int = 0  # bumped by every change of the app or its deployments
    build_config: dict[str, Any] | None = None  # build_config.cnb_versioning: pinned buildpack majors


@dataclass(frozen=True)
class Page:
    """One page of a listing and the total count the listing has."""

    items: list[App]
    total: int


@dataclass(frozen=True)
class AppView:
    """An app with the deployments its API object shows."""

    app: App
    active: Deployment | None = None
    in_progress: Deployment | None = None
    pending: Deployment | None = None
    pinned: Deployment | None = None
