"""Static sites on the Kubernetes backend: fetched and built on shoal's host (the local runtime's git
cache and builder) and served by shoal's own ingress, as DigitalOcean serves them from its edge rather
than from a container. Nothing of a static site runs in the cluster."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, Artifact, RunUnit
from shoal.domain.ports import LogSink
from shoal.domain.routing import StaticSite
from shoal.runtime.local.build import Builder, BuildResult
from shoal.runtime.local.environment import values
from shoal.runtime.local.sources import SourceCache, source_ref


class StaticSites:
    def __init__(self, data_dir: Path, sources: SourceCache) -> None:
        self._sources = sources  # the runtime's one cache: its per-mirror locks hold across every unit
        self._builder = Builder(data_dir / "builds", in_use=self._in_use)
        self._checkouts = data_dir / "checkouts"
        self._built: dict[tuple[str, str], BuildResult] = {}  # (deployment, unit) → its build

    def _in_use(self) -> list[Path]:
        return [b.build_dir for b in self._built.values()]

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        ref = source_ref(unit.source, plan.account_id)
        if ref is None:
            raise StepFailed("BuildJobFailed", f"static site {unit.name} has no git source")
        return await self._sources.fetch(ref, lambda line: log("BUILD", unit.name, line))

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        ref = source_ref(unit.source, plan.account_id)
        if ref is None or unit.commit is None:
            raise StepFailed("BuildJobFailed", f"static site {unit.name} has no fetched source")
        checkout = self._checkouts / plan.deployment_id / unit.name
        await asyncio.to_thread(shutil.rmtree, checkout, True)
        try:
            await self._sources.export(ref, unit.commit, checkout)
            result = await self._builder.build(app_id=plan.app_id, unit=unit, commit=unit.commit, checkout=checkout,
                                               build_env=values(unit.build_env), force=plan.force_build,
                                               log=lambda line: log("BUILD", unit.name, line))
        finally:
            await asyncio.to_thread(shutil.rmtree, checkout, True)
        self._built[(plan.deployment_id, unit.name)] = result
        return Artifact("directory", str(result.build_dir), result.reused)

    async def site(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> StaticSite | None:
        """What the ingress serves for ``unit``: its build (reloaded from the recorded artefact, else rebuilt)."""
        found = self._built.get((plan.deployment_id, unit.name))
        if found is None and unit.artifact is not None and unit.artifact.kind == "directory":
            found = self._builder.load(Path(unit.artifact.location), unit)
        if found is None:
            from dataclasses import replace

            commit = unit.commit or await self.fetch(plan, unit, log)
            await self.build(plan, replace(unit, commit=commit), log)
            found = self._built.get((plan.deployment_id, unit.name))
        if found is None or found.static_root is None or unit.static is None:
            return None
        self._built[(plan.deployment_id, unit.name)] = found
        docs = unit.static
        return StaticSite(found.static_root, docs.index_document, docs.error_document, docs.catchall_document)

    def forget(self, deployment_id: str) -> None:
        for key in [k for k in self._built if k[0] == deployment_id]:
            del self._built[key]
