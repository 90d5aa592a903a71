"""The App record: what the store keeps for an app, independent of the wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a listing and the total count the listing has."""

    items: list[App]
    total: int
