"""Images for git-sourced services, workers and jobs on Kubernetes: built on shoal's host by the
container runtime's builder, pushed to ``--image-registry``, run by digest.

Role: the cluster cannot build, so shoal does what the container runtime does — the same
``SourceCache`` and source policy (fetch, a rollback's pinned commit), the same ``ContainerBuilder``
(Dockerfile builds with the engine's ``docker build``, buildpack builds in the stack image, each image
tagged by the key of every input) — and then pushes the image to the registry the cluster pulls
from, as ``REGISTRY/shoal/<app id>-<component>:<build key>``. The artefact is
``REGISTRY/shoal/<app id>-<component>@sha256:...`` (the digest the registry answers for that tag), so a
restart or a rollback runs exactly that image, and a deployment whose build key is unchanged reuses
the built image and, when the registry still has it, pushes nothing (``PreviousBuildReused``).

Needs: ``--image-registry`` and a container engine on shoal's host (shoal's own podman service, or
``--container-engine-url``), opened at the first build, not at start — a cluster that only runs
``image`` sources needs neither. What is missing is said as the build step's reason.

Must not: talk to the docker SDK itself (``shoal.runtime.container`` does) or to the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, Artifact, RunUnit
from shoal.runtime.container import images
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.builds import DEBIAN_CA_BUNDLE, ContainerBuilder, Image, app_images
from shoal.runtime.container.engine import EngineUnavailable
from shoal.runtime.container.registries import ImageRef
from shoal.runtime.kubernetes.images import delete_repository, repositories, resolve_digest
from shoal.runtime.local.sources import SourceCache

logger = logging.getLogger("shoal.runtime.kubernetes")

Log = Callable[[str], None]
NO_REGISTRY = ("on Kubernetes shoal builds git sources into images on its own host and pushes them to a registry "
               "the cluster pulls from: start shoal with --image-registry HOST[:PORT] (and podman installed, or "
               "--container-engine-url), or deploy an image source")


def missing_registry(unit: RunUnit) -> StepFailed:
    return StepFailed("BuildJobFailed", f"{unit.name} is built from git, and no --image-registry is set: "
                                        f"{NO_REGISTRY}")


class ClusterImages:
    """Build (by the container runtime's builder), push, and name by digest."""

    def __init__(self, registry: str, access: EngineAccess, sources: SourceCache, data_dir: Path, stack_image: str,
                 mirrors: Mapping[str, str], ca_bundle: Path | None = DEBIAN_CA_BUNDLE) -> None:
        self._registry = registry.rstrip("/")
        self._access = access
        # No box: registry_credentials belong to image sources, which the cluster pulls itself.
        self._builder = ContainerBuilder(access, sources, data_dir / "checkouts", data_dir / "sites", stack_image,
                                         mirrors, None, ca_bundle)

    def target(self, plan: AppPlan, unit: RunUnit, key: str) -> ImageRef:
        return ImageRef(self._registry, f"shoal/{plan.app_id}-{unit.name}".lower(), tag=key)

    async def build(self, plan: AppPlan, unit: RunUnit, build_env: Mapping[str, str], log: Log) -> Artifact:
        try:
            built = await self._builder.build(plan, unit, build_env, log, plan.force_build)
        except EngineUnavailable as exc:
            raise StepFailed("BuildJobFailed", f"{unit.name} is built from git, which needs a container engine on "
                                               f"shoal's host to build its image (install podman, or give "
                                               f"--container-engine-url): {exc}") from exc
        target = self.target(plan, unit, built.reference.rpartition(":")[2])
        digest = await self._in_registry(target) if built.reused else None
        if digest is not None:
            log(f"=> {target.reference} is in {self._registry} already ({digest}): nothing to push")
        else:
            digest = await self._push(built, target, log)
        log(f"=> The cluster runs {target.repository}@{digest}")
        return Artifact("image", f"{target.repository}@{digest}", built.reused, digest)

    async def _in_registry(self, target: ImageRef) -> str | None:
        try:
            return await asyncio.to_thread(resolve_digest, target)
        except (httpx.HTTPError, LookupError):
            return None  # not there (or the registry cannot say): pushed again

    async def _push(self, built: Image, target: ImageRef, log: Log) -> str:
        reported = await self._access.call(images.push, built.image_id, target.repository, target.tag or "latest", log)
        try:
            return await asyncio.to_thread(resolve_digest, target)  # what the cluster will be served
        except (httpx.HTTPError, LookupError) as exc:
            if reported:
                return reported
            raise StepFailed("BuildJobFailed", f"pushed {target.reference}, but {self._registry} does not say "
                                               f"its digest: {exc}") from exc

    async def remove_app(self, app_id: str) -> None:
        """The app's built images go, on shoal's host and in the registry (``shoal/<app id>-<component>``,
        every tag). A registry that refuses deletes keeps them, and the log says so: deleting the app
        does not wait on it."""
        if self._access.opened:
            await self._access.call(lambda engine: images.remove(engine, app_images(engine, app_id)))
        if not self._registry:
            return
        try:
            for path in await asyncio.to_thread(repositories, self._registry, f"shoal/{app_id}-".lower()):
                deleted = await asyncio.to_thread(delete_repository, self._registry, path)
                logger.info("deleted %d image(s) of %s from %s", deleted, path, self._registry)
        except (httpx.HTTPError, LookupError, ValueError) as exc:
            logger.warning("the images of app %s stay in %s: %s", app_id, self._registry, exc)

    def close(self) -> None:
        self._access.close()
