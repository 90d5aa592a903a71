"""Tiny images written directly and pushed to the loopback registry (Docker Registry HTTP API v2).

No registry beyond loopback is reachable here and no image builder is needed for a FROM-scratch image
of a few static files: a layer is a gzip'd tar, a config and a manifest are JSON, all addressed by
sha256. Layers are written reproducibly (mtime 0, root-owned), so pushing the same files twice yields
the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kubedev.procs import ClusterError

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class ImageSpec:
    """What goes into one image: files (host path → image path), symlinks, and how it starts."""

    files: dict[str, Path] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: ["PATH=/bin"])
    workdir: str = "/"


def _dirs_of(paths: list[str]) -> list[str]:
    seen: set[str] = set()
    for path in paths:
        parts = path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            seen.add("/".join(parts[:depth]))
    return sorted(seen)


def layer_bytes(spec: ImageSpec) -> tuple[bytes, str]:
    """The gzip'd layer and the sha256 of its uncompressed tar (the config's diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in _dirs_of([*spec.files, *spec.symlinks]) + ["tmp"]:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for dest, source in sorted(spec.files.items()):
            data = source.read_bytes()
            info = tarfile.TarInfo(dest.strip("/"))
            info.size, info.mode = len(data), source.stat().st_mode & 0o7777
            tar.addfile(info, io.BytesIO(data))
        for dest, target in sorted(spec.symlinks.items()):
            info = tarfile.TarInfo(dest.strip("/"))
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            tar.addfile(info)
    tar_bytes = raw.getvalue()
    zipped = io.BytesIO()
    with gzip.GzipFile(fileobj=zipped, mode="wb", mtime=0) as gz:
        gz.write(tar_bytes)
    return zipped.getvalue(), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _request(method: str, url: str, data: bytes | None = None, content_type: str | None = None
             ) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        if method == "HEAD" and exc.code == 404:
            return 404, {}
        body = exc.read().decode(errors="replace")[:500]
        raise ClusterError(f"registry answered {exc.code} to {method} {url}: {body}") from exc


def _push_blob(base: str, name: str, data: bytes) -> str:
    digest = _digest(data)
    if _request("HEAD", f"{base}/v2/{name}/blobs/{digest}")[0] == 200:
        return digest
    status, headers = _request("POST", f"{base}/v2/{name}/blobs/uploads/", b"")
    location = urllib.parse.urljoin(base, headers.get("Location", ""))
    joiner = "&" if "?" in location else "?"
    _request("PUT", f"{location}{joiner}digest={urllib.parse.quote(digest)}", data, "application/octet-stream")
    return digest


def push(registry: str, reference: str, spec: ImageSpec) -> str:
    """Push ``spec`` as ``registry/reference`` (``name[:tag]``); returns ``registry/name@sha256:...``."""
    name, _, tag = reference.partition(":")
    base = f"http://{registry}"
    layer, diff_id = layer_bytes(spec)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": spec.entrypoint or None, "Cmd": spec.cmd or None, "Env": spec.env,
                   "WorkingDir": spec.workdir},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "kube-dev-cluster image"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "size": len(config), "digest": _push_blob(base, name, config)},
        "layers": [{"mediaType": LAYER, "size": len(layer), "digest": _push_blob(base, name, layer)}],
    }, sort_keys=True).encode()
    _request("PUT", f"{base}/v2/{name}/manifests/{tag or 'latest'}", manifest, MANIFEST)
    return f"{registry}/{name}@{_digest(manifest)}"


BUSYBOX_APPLETS = ("sh", "cat", "echo", "env", "httpd", "ls", "sleep", "wget", "date", "hostname", "nc", "true",
                   "false", "test", "mkdir", "printf", "tee", "grep", "kill", "ps", "id", "sed", "wc")


def busybox_spec(busybox: Path) -> ImageSpec:
    """A shell-and-httpd image: static busybox at /bin/busybox with its common applets linked."""
    return ImageSpec(files={"/bin/busybox": busybox},
                     symlinks={f"/bin/{applet}": "busybox" for applet in BUSYBOX_APPLETS},
                     cmd=["/bin/sh"])
