"""What a pod's status says, as values: ready or not, since when, and why it is not (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def started(pod: dict[str, Any]) -> datetime | None:
    stamp = (pod.get("status") or {}).get("startTime")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def restarts(pod: dict[str, Any]) -> int:
    return sum(int(s.get("restartCount", 0)) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def trouble(pods: Iterable[dict[str, Any]]) -> str:
    """Why pods are not ready, as the kubelet says it (``ImagePullBackOff: ...``, ``exited with status 1``),
    in parentheses; empty when it says nothing."""
    reasons = set()
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            done = (status.get("lastState") or {}).get("terminated")
            if waiting.get("reason"):
                reasons.add(f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": "))
            if done:
                reasons.add(f"exited with status {done.get('exitCode')}")
    return f" ({'; '.join(sorted(reasons))})" if reasons else ""
