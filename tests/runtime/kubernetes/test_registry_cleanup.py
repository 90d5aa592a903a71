"""Deleting an app's pushed images from a real registry (Debian's docker-registry on loopback), as
the Kubernetes runtime does when the app is deleted."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shoal.runtime.kubernetes.images import delete_repository, repositories
from tests.registry import LoopbackRegistry, registry_available

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _upload(registry: LoopbackRegistry, path: str, tag: str) -> None:
    """A zero-layer image under ``path:tag``, put through the registry's own API."""
    base = f"http://{registry.host}/v2/{path}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
    location = httpx.post(f"{base}/blobs/uploads/", timeout=10).headers["location"]
    url = location if location.startswith("http") else f"http://{registry.host}{location}"
    url += ("&" if "?" in url else "?") + f"digest={digest}"  # the upload URL carries its own state already
    assert httpx.put(url, content=config, timeout=10).status_code == 201
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "layers": [],
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                           "digest": digest}}
    answer = httpx.put(f"{base}/manifests/{tag}", content=json.dumps(manifest), headers={"content-type": MANIFEST},
                       timeout=10)
    assert answer.status_code == 201, answer.text


def _tags(registry: LoopbackRegistry, path: str) -> list[str]:
    answer = httpx.get(f"http://{registry.host}/v2/{path}/tags/list", timeout=10)
    return [] if answer.status_code == 404 else list(answer.json().get("tags") or [])


@pytest.fixture
def registry(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LoopbackRegistry]:
    missing = registry_available()
    if missing:
        pytest.skip(missing)
    started = LoopbackRegistry(tmp_path / "registry", auth=False, deletes=getattr(request, "param", True)).start()
    yield started
    started.stop()


def test_the_apps_repositories_lose_every_tag_and_another_apps_keep_theirs(registry: LoopbackRegistry) -> None:
    app, other = str(uuid.uuid4()), str(uuid.uuid4())
    for tag in ("key-one", "key-two"):
        _upload(registry, f"shoal/{app}-web", tag)
    _upload(registry, f"shoal/{app}-migrate", "key-one")
    _upload(registry, f"shoal/{other}-web", "key-one")
    mine = sorted(repositories(registry.host, f"shoal/{app}-"))
    assert mine == [f"shoal/{app}-migrate", f"shoal/{app}-web"]
    assert [delete_repository(registry.host, path) for path in mine] == [1, 2]
    assert _tags(registry, f"shoal/{app}-web") == [] and _tags(registry, f"shoal/{app}-migrate") == []
    assert _tags(registry, f"shoal/{other}-web") == ["key-one"]
    assert delete_repository(registry.host, f"shoal/{uuid.uuid4()}-web") == 0  # never pushed: nothing to do


@pytest.mark.parametrize("registry", [False], indirect=True)
def test_a_registry_that_refuses_deletes_says_so(registry: LoopbackRegistry) -> None:
    path = f"shoal/{uuid.uuid4()}-web"
    _upload(registry, path, "key-one")
    with pytest.raises(LookupError, match="answered 405"):
        delete_repository(registry.host, path)
    assert _tags(registry, path) == ["key-one"]
