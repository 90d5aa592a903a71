"""Log lines of deployments, jobs and instances, and DigitalOcean's plain-text line format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

@dataclass(frozen=True)
class LogLine:
    deployment_id: str
    stage: str  # BUILD, DEPLOY, RUN, RUN_RESTARTED
    component: str
    ts: datetime
    line: str

    def render(self) -> str:
        """``<component> <RFC3339 time> <line>``: what doctl prints and ``--no-prefix`` strips."""
        stamp = self.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{self.component} {stamp} {self.line}"
