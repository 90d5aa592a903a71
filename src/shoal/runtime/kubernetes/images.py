"""Which image a unit runs, pinned by digest.

``image`` sources are used directly (the operator's ``--registry-mirror FROM=TO`` applied, as in the
container runtime); ``fetch`` asks the registry which digest the tag names now, and the pod then runs
``repository@sha256:...`` — so a rollback (which pins the earlier digest as the unit's commit) runs
exactly the earlier image, and a tag moved later changes nothing that runs. Registries on loopback are
spoken to over plain HTTP, others over HTTPS.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from shoal.domain.plan import ImageSource
from shoal.runtime.container.registries import ImageRef, image_ref

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])


def reference_of(source: ImageSource, mirrors: Mapping[str, str]) -> ImageRef:
    block = {"registry_type": source.registry_type, "registry": source.registry, "repository": source.repository,
             "tag": source.tag, "digest": source.digest}
    return image_ref(block, mirrors)


def _base(registry: str) -> str:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    loopback = host in ("localhost", "127.0.0.1", "::1", "[::1]") or host.startswith("127.")
    return f"{'http' if loopback else 'https'}://{registry}"


def resolve_digest(ref: ImageRef, timeout: float = 15.0) -> str:
    """The digest ``ref``'s tag names now (``ref.digest`` when pinned); raises ``httpx.HTTPError`` or
    ``LookupError`` (with the registry's answer) when the registry cannot say."""
    if ref.digest:
        return ref.digest
    url = f"{_base(ref.registry)}/v2/{ref.path}/manifests/{ref.tag or 'latest'}"
    answer = httpx.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=timeout)
    if answer.status_code == 404:
        raise LookupError(f"{ref.reference} does not exist in {ref.registry}")
    if answer.status_code != 200 or not answer.headers.get("Docker-Content-Digest"):
        raise LookupError(f"{ref.registry} answered {answer.status_code} for {ref.reference}")
    return str(answer.headers["Docker-Content-Digest"])


def pinned(ref: ImageRef, digest: str) -> str:
    return f"{ref.repository}@{digest}"


def repositories(registry: str, prefix: str, timeout: float = 15.0) -> list[str]:
    """The registry's repositories whose path starts with ``prefix`` (its catalogue, every page)."""
    found: list[str] = []
    url: str | None = f"{_base(registry)}/v2/_catalog?n=1000"
    while url:
        answer = httpx.get(url, timeout=timeout)
        answer.raise_for_status()
        found += [name for name in answer.json().get("repositories") or [] if str(name).startswith(prefix)]
        following = answer.links.get("next", {}).get("url")
        url = f"{_base(registry)}{following}" if following else None
    return found


def delete_repository(registry: str, path: str, timeout: float = 15.0) -> int:
    """Delete every manifest of ``registry/path`` (each tag's digest); how many went. ``LookupError``
    with the registry's answer when it refuses (a registry started without ``delete: enabled``)."""
    base = f"{_base(registry)}/v2/{path}"
    listed = httpx.get(f"{base}/tags/list", timeout=timeout)
    if listed.status_code == 404:
        return 0
    listed.raise_for_status()
    digests = {resolve_digest(ImageRef(registry, path, tag=str(tag)), timeout)
               for tag in listed.json().get("tags") or []}
    for digest in sorted(digests):
        answer = httpx.delete(f"{base}/manifests/{digest}", timeout=timeout)
        if answer.status_code not in (202, 404):
            raise LookupError(f"{registry} answered {answer.status_code} to deleting {path}@{digest}: "
                              f"{answer.text[:200]}")
    return len(digests)
