"""Images: pull (with credentials and progress), Dockerfile builds, copying files out, import, removal, pruning.

Role: blocking calls on one ``Engine`` (the runtime runs them in a thread); every line the engine
reports goes to ``log`` as it arrives. Failures a user can act on are ``StepFailed`` with
DigitalOcean's reason codes (``BuildJobFailed`` for a missing image or refused credentials,
``BuildJobExitNonZero`` for a failing Dockerfile step), and their messages never hold a credential.

Dockerfile builds follow DigitalOcean (reference §1.4): the context is ``source_dir``, the Dockerfile
path is relative to the repository root and is put into the context when it lies outside it (the
SDK does this, as doctl does), ``.dockerignore`` is read from the context, build args are the
build-visible variables, the last stage is the image, and the engine's layer cache is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import docker.errors
import docker.utils.build
import requests

from shoal.domain.deployments import StepFailed
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.registries import ImageRef

Log = Callable[[str], None]
_SHA = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pulled:
    image_id: str
    digest: str | None  # repository@sha256:... as the registry reported it; recorded on the deployment


@dataclass(frozen=True)
class Built:
    image_id: str
    cached_steps: int  # steps the engine's layer cache answered
    steps: int


def pull(engine: Engine, ref: ImageRef, auth: tuple[str, str] | None, log: Log) -> Pulled:
    """Pull ``ref``; progress lines go to ``log`` (one per layer state change, not every byte)."""
    secret = auth[1] if auth else ""
    auth_config = {"username": auth[0], "password": auth[1]} if auth else None
    log(f"=> Pulling {ref.reference}" + (f" as {auth[0]}" if auth else ""))
    seen: set[tuple[str, str]] = set()
    try:
        events = engine.api.pull(ref.repository, tag=ref.digest or ref.tag, stream=True, decode=True,
                                 auth_config=auth_config)
        for event in events:
            if event.get("error"):
                raise _pull_failed(ref, str(event["error"]), auth is not None, secret)
            line = _progress_line(event, seen)
            if line:
                log(_masked(line, secret))
        image = engine.client.images.get(ref.reference)
    except docker.errors.APIError as exc:
        raise _pull_failed(ref, str(exc.explanation or exc), auth is not None, secret) from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise StepFailed("BuildJobFailed", f"pulling {ref.reference} failed: {_masked(str(exc), secret)}") from None
    digest = _repo_digest(image.attrs, ref)
    log(f"=> Pulled {ref.reference}" + (f" ({digest})" if digest else ""))
    return Pulled(image_id=str(image.id), digest=digest)


def _progress_line(event: Mapping[str, Any], seen: set[tuple[str, str]]) -> str | None:
    status, layer = str(event.get("status") or event.get("stream") or "").strip(), str(event.get("id") or "")
    if not status or (layer, status) in seen:
        return None
    seen.add((layer, status))
    return f"{layer}: {status}" if layer else status


def _pull_failed(ref: ImageRef, message: str, had_auth: bool, secret: str) -> StepFailed:
    text = _masked(message, secret)
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        why = ("refused the credentials in registry_credentials" if had_auth
               else "needs credentials (set registry_credentials)")
        return StepFailed("BuildJobFailed", f"registry {ref.registry} {why} for {ref.path}: {text}")
    if "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered:
        return StepFailed("BuildJobFailed", f"image {ref.reference} was not found in registry {ref.registry}: {text}")
    return StepFailed("BuildJobFailed", f"pulling {ref.reference} failed: {text}")


def _masked(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _repo_digest(attrs: Mapping[str, Any], ref: ImageRef) -> str | None:
    digests = [str(d) for d in attrs.get("RepoDigests") or []]
    return next((d for d in digests if d.startswith(ref.repository + "@")), digests[0] if digests else None)


def build(engine: Engine, *, repo_root: Path, source_dir: str, dockerfile: str, tag: str,
          build_args: Mapping[str, str], labels: Mapping[str, str], log: Log) -> Built:
    """``docker build`` the DigitalOcean way (module docstring); output streamed to ``log``."""
    context = _inside(repo_root, source_dir, "source_dir")
    path = _inside(repo_root, dockerfile, "dockerfile_path")
    if not context.is_dir():
        raise StepFailed("BuildJobFailed", f"source_dir {source_dir!r} is not a directory in the repository")
    if not path.is_file():
        raise StepFailed("BuildJobFailed", f"dockerfile_path {dockerfile!r} was not found in the repository")
    log(f"=> Building {tag} from {dockerfile} (context {source_dir or '/'})")
    steps = cached = 0
    try:
        name, archive = _context(context, path)
        events = engine.api.build(fileobj=archive, custom_context=True, dockerfile=name, tag=tag,
                                  buildargs=dict(build_args), labels=dict(labels), rm=True, forcerm=True, decode=True)
        for event in events:
            if event.get("error"):
                raise StepFailed("BuildJobExitNonZero", f"the Dockerfile build failed: {str(event['error']).strip()}")
            for line in str(event.get("stream") or "").splitlines():
                if line.strip():
                    log(line.rstrip())
                    steps += line.startswith("STEP ") or line.startswith("Step ")
                    cached += "Using cache" in line
        image = engine.client.images.get(tag)
    except docker.errors.APIError as exc:
        raise StepFailed("BuildJobFailed", f"the Dockerfile build failed: {exc.explanation or exc}") from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise StepFailed("BuildJobFailed", f"the Dockerfile build failed: {exc}") from None
    return Built(image_id=str(image.id), cached_steps=cached, steps=steps)


def _context(context: Path, dockerfile: Path) -> tuple[str, IO[bytes]]:
    """The build context as a tar (``.dockerignore`` applied) and the Dockerfile's name in it: a
    Dockerfile outside the context is added under a name of its own, as doctl does. (The SDK's own
    handling sends that name and the file's text as two ``dockerfile`` parameters; podman reads the
    second one as a path, so the context is made here.)"""
    ignore = context / ".dockerignore"
    exclude = [line.strip() for line in ignore.read_text(encoding="utf-8", errors="replace").splitlines()
               if line.strip() and not line.strip().startswith("#")] if ignore.is_file() else None
    if dockerfile.is_relative_to(context):
        name = str(dockerfile.relative_to(context))
        return name, cast(IO[bytes], docker.utils.build.tar(context, exclude=exclude, dockerfile=(name, None)))
    name = f".dockerfile.{hashlib.sha256(str(dockerfile).encode()).hexdigest()[:20]}"
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    return name, cast(IO[bytes], docker.utils.build.tar(context, exclude=exclude, dockerfile=(name, text)))


def _inside(root: Path, relative: str, field: str) -> Path:
    """``relative`` (DigitalOcean writes ``/api``) under ``root``; a path that climbs out is refused."""
    parts = PurePosixPath(relative.strip("/") or ".")
    resolved = (root / parts).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise StepFailed("BuildJobFailed", f"{field} {relative!r} leaves the repository")
    return resolved


def exists(engine: Engine, reference: str) -> bool:
    try:
        engine.client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def tag(engine: Engine, image: str, reference: str) -> None:
    repository, _, version = reference.rpartition(":")
    engine.client.images.get(image).tag(repository, version)


def copy_out(engine: Engine, image: str, path: str, dest: Path) -> None:
    """Copy directory ``path`` of ``image`` into ``dest`` (created; replaced if it exists)."""
    if not path.startswith("/") or PurePosixPath(path) == PurePosixPath("/"):
        raise StepFailed("BuildJobFailed", f"output_dir {path!r} must be an absolute path inside the image, not /")
    holder = engine.client.containers.create(image, command=["true"], labels=engine.labels(role="copy"))
    try:
        stream, _ = holder.get_archive(path.rstrip("/") + "/.")
        _extract(stream, dest)
    except docker.errors.NotFound:
        raise StepFailed("BuildJobFailed", f"output_dir {path!r} does not exist in the built image") from None
    finally:
        holder.remove(force=True)


def _extract(chunks: Iterable[bytes], dest: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=dest.parent)) if dest.parent.is_dir() else None
    if staging is None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=_ChunkReader(iter(chunks)), mode="r|") as archive:
            archive.extractall(staging, filter="data")  # no absolute paths, no links out, no devices
        # "path/." is archived as the folder's contents (no wrapper folder): a site whose files all sit in
        # one folder (Django's staticfiles/<app>/...) keeps that folder.
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _ChunkReader(io.RawIOBase):
    """A file object over the SDK's chunk iterator, so ``tarfile`` streams instead of buffering it all."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def import_rootfs(engine: Engine, tarball: Path, reference: str, changes: list[str]) -> str:
    """``podman import``: a root filesystem tarball becomes image ``reference``; returns its id.
    (podman's compatible API ignores the tag and names the import ``repository:latest``, so the
    reference is set afterwards.)"""
    repository, _, version = reference.rpartition(":")
    result = engine.api.import_image(src=str(tarball), repository=repository, tag=version, changes=changes)
    text = result if isinstance(result, str) else json.dumps(result)
    found = _SHA.findall(text)
    image_id = found[-1] if found else str(engine.client.images.get(f"{repository}:latest").id)
    image = engine.client.images.get(image_id)
    image.tag(repository, version)
    if version != "latest" and f"{repository}:latest" in engine.client.images.get(image_id).tags:
        engine.client.images.remove(f"{repository}:latest")
    return str(image.id)


def labelled(engine: Engine, tagged_only: bool = False, **values: str) -> list[str]:
    """Ids of this installation's images with the given ``shoal.<key>`` labels. The engine is asked
    for the owner label only (podman 4.3 answers nothing to two image label filters); the rest is
    matched here. ``tagged_only`` leaves out the untagged steps of builds, which are the layer cache."""
    wanted = engine.labels(**values)
    # The summary list, not one inspect per image: an image removed meanwhile must not fail the listing.
    found = summaries(engine, {"label": f"shoal.owner={engine.owner}"})
    return [str(i["Id"]) for i in found if all((i.get("Labels") or {}).get(k) == v for k, v in wanted.items())
            and (_tags(i) or not tagged_only)]


def summaries(engine: Engine, filters: Mapping[str, str] | None = None, attempts: int = 5) -> list[dict[str, Any]]:
    """The engine's image list. podman fails the whole list ("image not known") when an image is
    removed while it lists — another app's pruning, say — so a failed listing is asked again."""
    for attempt in range(attempts):
        try:
            return list(engine.api.images(filters=dict(filters or {})))
        except docker.errors.APIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return []


def _tags(summary: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in summary.get("RepoTags") or [] if t and "<none>" not in str(t)]


def remove(engine: Engine, image_ids: Iterable[str]) -> int:
    """Remove images (every tag); ones still used by a container are left. Returns how many went."""
    gone = 0
    for image_id in image_ids:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                engine.client.images.remove(image_id, force=True)
                gone += 1
            except docker.errors.APIError:
                continue  # in use by a container: it goes with a later prune
    return gone


def prune(engine: Engine, keep: Iterable[str], **values: str) -> int:
    """Remove this installation's images (narrowed by labels) except ``keep`` (ids or references)
    and those any container still uses."""
    kept = {_image_id(engine, ref) for ref in keep}
    # Summaries, not one inspect per container: containers come and go while this runs.
    used = {str(c.get("ImageID") or "") or _image_id(engine, str(c.get("Image") or ""))
            for c in engine.api.containers(all=True)}
    candidates = labelled(engine, tagged_only=True, **values)
    return remove(engine, [i for i in candidates if i not in kept and i not in used])


def _image_id(engine: Engine, ref: str) -> str:
    try:
        return str(engine.client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return ref


def push(engine: Engine, image: str, repository: str, version: str, log: Log) -> str | None:
    """Tag ``image`` as ``repository:version`` and push it; returns the manifest digest the engine
    reports (``None`` if it reports none: the caller asks the registry). A registry on loopback is
    spoken to over plain HTTP when shoal's podman configuration names it (``conf.registries_conf_text``)."""
    target = f"{repository}:{version}"
    engine.client.images.get(image).tag(repository, version)
    log(f"=> Pushing {target}")
    seen: set[tuple[str, str]] = set()
    digest: str | None = None
    try:
        for event in engine.api.push(repository, tag=version, stream=True, decode=True):
            if event.get("error"):
                raise StepFailed("BuildJobFailed", f"pushing {target} failed: {str(event['error']).strip()}")
            digest = _pushed_digest(event) or digest
            line = _progress_line(event, seen)
            if line:
                log(line)
    except docker.errors.APIError as exc:
        raise StepFailed("BuildJobFailed", f"pushing {target} failed: {exc.explanation or exc}") from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise StepFailed("BuildJobFailed", f"pushing {target} failed: {exc}") from None
    log(f"=> Pushed {target}" + (f" ({digest})" if digest else ""))
    return digest


def _pushed_digest(event: Mapping[str, Any]) -> str | None:
    """The manifest digest in a push event: Docker's ``aux.Digest``, or a ``...: digest: sha256:... size: N``
    status line."""
    aux = event.get("aux") or {}
    status = str(event.get("status") or "")
    text = str(aux.get("Digest") or "") if isinstance(aux, Mapping) else ""
    found = _SHA.search(text) or (_SHA.search(status) if "digest:" in status else None)
    return found.group(0) if found else None
