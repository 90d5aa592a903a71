"""What each unit of a deployment runs on the Kubernetes backend: its source fetched, its image built or
resolved, and the image reference its workload names.

Split from ``runtime`` because it owns one noun, the unit's artefact, and none of the cluster's objects:
``image`` sources are pinned by the digest their registry answers (``images``), git sources are fetched
into shoal's source cache and built and pushed by ``builds``, static sites are fetched and built by
``static``. A rollback or a restart gets exactly its pinned commit or digest. Databases and functions
are refused here, at fetch, with the step's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from shoal.core.secrets import SecretBox
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, Artifact, ImageSource, Kind, RunUnit
from shoal.domain.ports import LogSink
from shoal.runtime.kubernetes.builds import ClusterImages, missing_registry
from shoal.runtime.kubernetes.environment import build_env
from shoal.runtime.kubernetes.images import pinned, reference_of, resolve_digest
from shoal.runtime.kubernetes.static import StaticSites
from shoal.runtime.local.sources import SourceCache, source_ref


class Artifacts:
    """The build steps of ``KubernetesRuntime`` (``fetch``, ``build``) and the image a workload runs."""

    def __init__(self, sources: SourceCache, static: StaticSites, builder: ClusterImages | None,
                 mirrors: Mapping[str, str], box: SecretBox | None) -> None:
        """``builder`` builds git-sourced images (``None`` without ``--image-registry``: those fail to build)."""
        self._sources = sources
        self._static = static
        self._builder = builder
        self._mirrors = mirrors
        self._box = box

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        if unit.kind == Kind.STATIC_SITE:
            return unit.commit or await self._static.fetch(plan, unit, log)
        self._refuse_kind(unit)
        if not isinstance(unit.source, ImageSource):  # git: a rollback or restart fetches exactly its pinned commit
            git = source_ref(unit.source, plan.account_id)
            if git is None:
                raise StepFailed("BuildJobFailed", f"{unit.name} has no source to build")
            return await self._sources.fetch(git, lambda line: log("BUILD", unit.name, line), unit.commit)
        source = self._image_source(unit)
        ref = reference_of(source, self._mirrors)
        if unit.commit and unit.commit.startswith("sha256:"):
            return unit.commit  # pinned: a rollback or a restart runs exactly the earlier image
        try:
            digest = await asyncio.to_thread(resolve_digest, ref)
        except (httpx.HTTPError, LookupError) as exc:
            raise StepFailed("BuildJobFailed", f"cannot resolve image {ref.reference}: {exc}") from exc
        log("BUILD", unit.name, f"image {ref.reference} is {digest}")
        return digest

    def _refuse_kind(self, unit: RunUnit) -> None:
        if unit.kind in (Kind.DATABASE, Kind.FUNCTION):
            raise StepFailed("BuildJobFailed", f"{unit.name}: the kubernetes runtime does not run "
                                               f"{unit.kind.value} components yet")

    def _image_source(self, unit: RunUnit) -> ImageSource:
        self._refuse_kind(unit)
        if not isinstance(unit.source, ImageSource):
            raise StepFailed("BuildJobFailed", f"{unit.name} has no image source and no built image; redeploy it")
        return unit.source

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        if unit.kind == Kind.STATIC_SITE:
            return await self._static.build(plan, unit, log)
        self._refuse_kind(unit)
        if not isinstance(unit.source, ImageSource):
            if self._builder is None:
                raise missing_registry(unit)
            return await self._builder.build(plan, unit, build_env(plan, unit, self._box),
                                             lambda line: log("BUILD", unit.name, line))
        ref = reference_of(self._image_source(unit), self._mirrors)
        digest = unit.commit if unit.commit and unit.commit.startswith("sha256:") else ref.digest
        if not digest:
            raise StepFailed("BuildJobFailed", f"{unit.name}: the image was not resolved to a digest")
        log("BUILD", unit.name, f"=> using image {pinned(ref, digest)} (nothing to build)")
        return Artifact("image", pinned(ref, digest), reused=True, digest=digest)

    def image(self, unit: RunUnit) -> str:
        if unit.artifact is not None and unit.artifact.kind == "image":
            return unit.artifact.location
        ref = reference_of(self._image_source(unit), self._mirrors)
        return pinned(ref, unit.commit) if unit.commit and unit.commit.startswith("sha256:") else ref.reference
