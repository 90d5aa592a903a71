"""Autoscaling events as DigitalOcean records them (do-runtime-reference.md §7): an app event of type
AUTOSCALING naming the deployment that was scaled and, per component, ``from``, ``to`` and the
metric that triggered it (``cpu``, ``requests_per_second``, ``request_duration``, ``scale_to_zero``,
``scale_from_zero``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"
CPU, SCALE_TO_ZERO, SCALE_FROM_ZERO = "cpu", "scale_to_zero", "scale_from_zero"


@dataclass(frozen=True)
class ScaleChange:
    from_count: int
    to_count: int
    triggering_metric: str

    def wire(self) -> dict[str, Any]:
        return {"from": self.from_count, "to": self.to_count, "triggering_metric": self.triggering_metric}


@dataclass(frozen=True)
class ScaleEvent:
    id: str
    app_id: str
    deployment_id: str
    created_at: datetime
    phase: str  # SUCCEEDED or FAILED
    components: dict[str, ScaleChange] = field(default_factory=dict)
    reason: str = ""  # why it failed

    def wire(self) -> dict[str, Any]:
        return {"phase": self.phase, "components": {name: c.wire() for name, c in self.components.items()}}
