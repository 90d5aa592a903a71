"""One namespace per app, labelled with the app and its account, so shoal can find (and adopt) its own.

The name derives from the app's id only (an app may be renamed; its id never changes). Deleting an app
deletes its namespace, and with it everything the app ran; ``delete_namespace`` returns once the
namespace is gone (the cluster's namespace controller empties it first).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from shoal.runtime.kubernetes.apply import Applier, Ref
from shoal.runtime.kubernetes.errors import RetryIn
from shoal.runtime.kubernetes.watch import converge, gone

MANAGED_BY = "app.kubernetes.io/managed-by"
APP_ID = "shoal.dev/app-id"
APP_NAME = "shoal.dev/app-name"
ACCOUNT = "shoal.dev/account"


def label_value(text: str) -> str:
    """``text`` as a label value (≤63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends); a changed value
    ends with a hash of the original so two different texts never share one."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("._-")
    if cleaned == text and len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[:52].rstrip('._-')}-{digest}".lstrip("-")


def namespace_name(app_id: str) -> str:
    """A DNS label from the app id: ``shoal-`` and the id, lowercased, at most 63 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", app_id.lower()).strip("-")
    return f"shoal-{slug}"[:63].rstrip("-")


def app_labels(app_id: str, app_name: str, account: str) -> dict[str, str]:
    return {MANAGED_BY: "shoal", APP_ID: label_value(app_id), APP_NAME: label_value(app_name),
            ACCOUNT: label_value(account)}


def namespace_object(app_id: str, app_name: str, account: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace_name(app_id), "labels": app_labels(app_id, app_name, account)}}


def ensure_namespace(applier: Applier, app_id: str, app_name: str, account: str) -> dict[str, Any]:
    """Create or relabel the app's namespace; RetryIn while an earlier one of the same name is terminating."""
    live = applier.apply(namespace_object(app_id, app_name, account))
    if (live.get("status") or {}).get("phase") == "Terminating":
        raise RetryIn(2.0, f"namespace {live['metadata']['name']} is still being deleted")
    return live


def delete_namespace(applier: Applier, app_id: str, timeout: float = 120.0) -> bool:
    """Delete the app's namespace and wait until it is gone; False when there was none."""
    ref = Ref("v1", "Namespace", None, namespace_name(app_id))
    found = applier.delete(ref)
    converge(applier.kube, applier.catalog, ref, gone, timeout)
    return found


def shoal_namespaces(applier: Applier) -> list[dict[str, Any]]:
    """Every namespace shoal made (on any earlier run): what a restarted shoal adopts."""
    kind = applier.catalog.kind("v1", "Namespace")
    listing = applier.kube.request("GET", kind.path(), [("labelSelector", f"{MANAGED_BY}=shoal")])
    return list(listing.get("items") or [])
