"""Watch one object until a judge says it converged, or will not.

``converge`` lists the object (by name) for a resourceVersion, asks the judge, then watches from there
and asks again on every event; a ``410 Gone`` (the watch fell too far behind) lists afresh. Judges are
pure functions of the object as JSON (None when it does not exist) — ``deployment_rollout`` follows
what ``kubectl rollout status`` checks — so they are tested by calling them. Progress messages go to
``on_progress`` as they change, for the deployment's log.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.runtime.kubernetes.apply import Ref
from shoal.runtime.kubernetes.connection import Kube
from shoal.runtime.kubernetes.discovery import Catalog, Kind
from shoal.runtime.kubernetes.errors import GiveUp, RetryIn

Obj = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    """What a judge says: converged, or failed for a reason, or still going (``message`` says how far)."""

    done: bool = False
    failed: str | None = None
    message: str = ""


Judge = Callable[[Obj | None], Verdict]


def _condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def deployment_rollout(obj: Obj | None) -> Verdict:
    """A Deployment is rolled out when its newest ReplicaSet has every replica available and no old ones."""
    if obj is None:
        return Verdict(message="waiting for the Deployment to exist")
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return Verdict(message="waiting for the Deployment controller to see the new spec")
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Verdict(failed=f"rollout stalled: {progressing.get('message', 'progress deadline exceeded')}")
    wanted = int((obj.get("spec") or {}).get("replicas", 1))
    updated, total = int(status.get("updatedReplicas", 0)), int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < wanted:
        return Verdict(message=f"{updated} of {wanted} new replicas updated")
    if total > updated:
        return Verdict(message=f"{total - updated} old replicas are pending termination")
    if available < updated:
        return Verdict(message=f"{available} of {updated} new replicas available")
    return Verdict(done=True, message=f"{available} of {wanted} replicas available")


def job_finished(obj: Obj | None) -> Verdict:
    """A Job is done when Complete; failed when Failed (its reason: BackoffLimitExceeded, DeadlineExceeded)."""
    if obj is None:
        return Verdict(failed="the Job is gone")
    for kind in ("Complete", "Failed"):
        condition = _condition(obj, kind)
        if condition and condition.get("status") == "True":
            if kind == "Complete":
                return Verdict(done=True, message="complete")
            return Verdict(failed=f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".rstrip(": "))
    status = obj.get("status") or {}
    return Verdict(message=f"{status.get('active', 0)} running, {status.get('succeeded', 0)} succeeded, "
                           f"{status.get('failed', 0)} failed")


def gone(obj: Obj | None) -> Verdict:
    if obj is None:
        return Verdict(done=True, message="gone")
    phase = (obj.get("status") or {}).get("phase")
    return Verdict(message=f"still there ({phase})" if phase else "still there")


def events(kube: Kube, path: str, selector: tuple[str, str], version: str, seconds: int) -> Any:
    """Watch events on collection ``path`` from ``version``: (type, object) pairs; ('GONE', None) when
    ``version`` is too old to watch from (list again). ``selector`` is (fieldSelector|labelSelector, value)."""
    query = [("watch", "1"), selector, ("resourceVersion", version), ("timeoutSeconds", str(seconds)),
             ("allowWatchBookmarks", "true")]
    with kube.lines(path, query, timeout=seconds + 15) as stream:
        for line in stream:
            if not line.strip():
                continue
            event = json.loads(line)
            kind_of, obj = event.get("type"), event.get("object") or {}
            if kind_of == "ERROR":
                if obj.get("code") == 410:
                    yield "GONE", None
                    return
                raise RetryIn(2.0, f"watching {path}: {obj.get('message', obj)}", obj.get("code"))
            yield kind_of, obj


def _list(kube: Kube, kind: Kind, ref: Ref) -> tuple[Obj | None, str]:
    listing = kube.request("GET", kind.path(ref.namespace), [("fieldSelector", f"metadata.name={ref.name}")])
    items = listing.get("items") or []
    obj = items[0] if items else None
    if obj is not None:
        obj.setdefault("apiVersion", ref.api_version)
        obj.setdefault("kind", ref.kind)
    return obj, str((listing.get("metadata") or {}).get("resourceVersion", ""))


def converge(kube: Kube, catalog: Catalog, ref: Ref, judge: Judge, timeout: float,
             on_progress: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> Obj | None:
    """Return the object once ``judge`` says done; GiveUp when it says failed; RetryIn on timeout or stop."""
    kind = catalog.kind(ref.api_version, ref.kind)
    deadline = time.monotonic() + timeout
    said = ""

    def consider(obj: Obj | None) -> Verdict:
        nonlocal said
        verdict = judge(obj)
        if verdict.failed:
            raise GiveUp(f"{ref}: {verdict.failed}")
        if on_progress and verdict.message and verdict.message != said:
            on_progress(verdict.message)
        said = verdict.message or said
        return verdict

    while True:
        obj, version = _list(kube, kind, ref)
        if consider(obj).done:
            return obj
        while (left := deadline - time.monotonic()) > 0 and not (stop and stop.is_set()):
            window = max(1, min(int(left), 30 if stop is None else 5))
            relist = False
            by_name = ("fieldSelector", f"metadata.name={ref.name}")
            for kind_of, event_obj in events(kube, kind.path(ref.namespace), by_name, version, window):
                if kind_of == "GONE":
                    relist = True
                    break
                version = str((event_obj.get("metadata") or {}).get("resourceVersion", version))
                if kind_of == "BOOKMARK":
                    continue
                obj = None if kind_of == "DELETED" else event_obj
                if consider(obj).done:
                    return obj
            if relist:
                break
        else:
            why = "stopped" if stop and stop.is_set() else f"not converged after {timeout:.0f} s"
            raise RetryIn(5.0, f"{ref}: {why}" + (f" ({said})" if said else ""))
