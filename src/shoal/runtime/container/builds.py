"""Images for run units: git sources fetched and built (Dockerfile or buildpack), image sources pulled.

Role: turn a unit of the plan into an image the engine can run, and say how it runs (``Image``):

* git sources are fetched by the local runtime's ``SourceCache`` (one bare mirror per URL) and
  exported per build into a scratch checkout;
* ``dockerfile_path`` builds run the engine's ``docker build`` the DigitalOcean way (``images.build``);
  BUILD_TIME / RUN_AND_BUILD_TIME variables are build args;
* buildpack builds run ``shoal.runtime.buildpacks`` (the local runtime's detection and recipes) in a
  build container from the stack image (``executor``): the app image is the stack plus the built tree;
* ``image`` sources are pulled (credentials unsealed only for the pull) and recorded by digest;
* a static site's output is copied out of its image into ``sites/`` for the ingress to serve.

Built images are tagged by a key of every input that changes them (the local builder's
``build_key``), so an unchanged deployment finds its image and reuses it (``PreviousBuildReused``);
what the image runs (its run command, workdir, static root) travels in its labels, so a restarted
shoal needs nothing but the recorded artefact. Pruning keeps the newest builds of a component (the
rollback targets), the one just made, and whatever a container still uses.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from shoal.core.errors import InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import AppPlan, BuildStrategy, ImageSource, Kind, RunUnit
from shoal.runtime import buildpacks
from shoal.runtime.container import executor, images
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.registries import ImageRef, credentials, image_ref
from shoal.runtime.local.build import build_key
from shoal.runtime.local.sources import SourceCache, source_ref

Log = Callable[[str], None]
KEEP_IMAGES = 3  # per component, besides the one just built and those in use (as the local builder keeps)
DEBIAN_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
RUN_LABEL, WORKDIR_LABEL, OUTPUT_LABEL = "shoal.run-command", "shoal.workdir", "shoal.output-dir"


@dataclass(frozen=True)
class Image:
    """An image a unit runs, and how: ``run_command`` ``None`` keeps the image's own CMD."""

    reference: str  # a tag or an image id: what the engine runs
    image_id: str
    run_command: str | None = None
    workdir: str | None = None
    static_root: Path | None = None  # a static site's files, copied out of the image
    reused: bool = False
    digest: str | None = None  # pulled images: repository@sha256:...


class ContainerBuilder:
    def __init__(self, access: EngineAccess, sources: SourceCache, checkouts: Path, sites: Path, stack_image: str,
                 mirrors: Mapping[str, str], box: SecretBox | None, ca_bundle: Path | None = DEBIAN_CA_BUNDLE) -> None:
        self._access = access
        self._sources = sources
        self._checkouts = checkouts
        self._sites = sites
        self._stack = stack_image
        self._mirrors = dict(mirrors)
        self._box = box
        self._ca_bundle = ca_bundle  # the host's trusted CAs, given to buildpack builds
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # -- fetch -----------------------------------------------------------------------------------

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: Log) -> str:
        """A git commit, or for an image source the digest it pulled (the exact one on a rollback)."""
        if isinstance(unit.source, ImageSource):
            return (await self._pull(plan, unit, log)).digest or ""
        ref = source_ref(unit.source, plan.account_id)
        if ref is None:
            raise StepFailed("BuildJobFailed", f"{unit.name} has no source to build")
        return await self._sources.fetch(ref, log, unit.commit)

    def _ref(self, unit: RunUnit) -> ImageRef:
        source = unit.source
        assert isinstance(source, ImageSource)
        found = image_ref({"registry_type": source.registry_type, "registry": source.registry,
                           "repository": source.repository, "tag": source.tag, "digest": source.digest},
                          self._mirrors)
        if unit.commit and unit.commit.startswith("sha256:"):
            found = replace(found, digest=unit.commit, tag=None)  # a rollback runs exactly what ran before
        return found

    async def _pull(self, plan: AppPlan, unit: RunUnit, log: Log) -> Image:
        ref = self._ref(unit)
        auth = credentials(self._unsealed(plan, unit))
        pulled = await self._access.call(images.pull, ref, auth, log)
        digest = pulled.digest.rpartition("@")[2] if pulled.digest else None
        engine = await self._access.ready()
        # Tagged under the app's name too, so removing the app finds what was pulled for it.
        mine = f"{image_repository(engine, plan.app_id, unit.name)}:pulled-{pulled.image_id.removeprefix('sha256:')[:16]}"
        await self._access.call(images.tag, pulled.image_id, mine)
        return Image(reference=pulled.image_id, image_id=pulled.image_id, run_command=unit.run_command,
                     digest=digest)

    def _unsealed(self, plan: AppPlan, unit: RunUnit) -> str | None:
        source = unit.source
        value = source.credentials if isinstance(source, ImageSource) else None
        if not value or self._box is None or not is_encrypted(value):
            return value
        try:
            return self._box.decrypt(plan.account_id, value)
        except InvalidArgument as exc:
            raise StepFailed("InternalError", f"{unit.name}: registry_credentials cannot be decrypted") from exc

    # -- build -----------------------------------------------------------------------------------

    async def build(self, plan: AppPlan, unit: RunUnit, build_env: Mapping[str, str], log: Log,
                    force: bool = False) -> Image:
        """The unit's image: pulled, found again by its key (reused), or built now."""
        if unit.build.strategy == BuildStrategy.IMAGE or isinstance(unit.source, ImageSource):
            return await self._pull(plan, unit, log)
        ref = source_ref(unit.source, plan.account_id)
        if ref is None or unit.commit is None:
            raise StepFailed("BuildJobFailed", f"{unit.name} has no fetched source shoal can build")
        if unit.build.leaves_repository:
            raise StepFailed("BuildJobFailed", f"source_dir {unit.build.source_dir!r} leaves the repository")
        lock = self._locks.setdefault((plan.app_id, unit.name), asyncio.Lock())
        async with lock:
            checkout = self._checkouts / plan.deployment_id / unit.name
            await asyncio.to_thread(shutil.rmtree, checkout, True)
            try:
                await self._sources.export(ref, unit.commit, checkout)
                return await self._build_checkout(plan, unit, checkout, build_env, log, force)
            finally:
                await asyncio.to_thread(shutil.rmtree, checkout, True)

    async def _build_checkout(self, plan: AppPlan, unit: RunUnit, checkout: Path, build_env: Mapping[str, str],
                              log: Log, force: bool) -> Image:
        engine = await self._access.ready()
        app_dir = checkout / unit.build.source_dir
        if not app_dir.is_dir():
            raise StepFailed("BuildJobFailed", f"source_dir {unit.build.source_dir!r} of {unit.name} does not exist "
                                               f"in commit {(unit.commit or '')[:7]}")
        dockerfile = unit.build.strategy == BuildStrategy.DOCKERFILE
        detection = None if dockerfile else buildpacks.detect(app_dir, unit.build.environment_slug,
                                                              unit.build.build_command)
        stack = detection.language if detection else "dockerfile"
        key = build_key(commit=unit.commit or "", build=unit.build, build_env=build_env,
                        stack=f"{stack}@{await self._access.call(_image_id, self._stack)}")
        tag = f"{image_repository(engine, plan.app_id, unit.name)}:{key}"
        if not force and await self._access.call(images.exists, tag):
            log(f"PreviousBuildReused: reusing the image of commit {(unit.commit or '')[:7]} ({tag}); "
                "nothing changed since it was built")
            return await self.load(plan, unit, tag, reused=True)
        labels: dict[str, str] = engine.labels(app=plan.app_id, component=unit.name, build=key)
        if detection is None:
            labels[RUN_LABEL] = unit.run_command or ""
            await self._access.call(images.build, repo_root=checkout, source_dir=unit.build.source_dir,
                                    dockerfile=unit.build.dockerfile_path or "Dockerfile", tag=tag,
                                    build_args=dict(build_env), labels=labels, log=log)
        else:
            await self._buildpack(plan, unit, detection, checkout, build_env, tag, labels, log)
        image = await self.load(plan, unit, tag, reused=False)
        try:
            await self._access.call(prune, plan.app_id, unit.name, image.image_id)
        except Exception as exc:  # pruning is housekeeping: a failed one is tried again after the next build
            log(f"=> Could not prune older images of {unit.name}: {exc}")
        log("=> Build complete")
        return image

    async def _buildpack(self, plan: AppPlan, unit: RunUnit, detection: buildpacks.Detection, checkout: Path,
                         build_env: Mapping[str, str], tag: str, labels: dict[str, str], log: Log) -> None:
        """The buildpacks' recipe run in a build container from the stack image, committed as ``tag``."""
        engine = await self._access.ready()
        ca = self._ca_bundle if self._ca_bundle is not None and self._ca_bundle.is_file() else None
        name = f"shoal-{engine.owner[:8]}-{plan.app_id[:8]}-{unit.name}-{plan.deployment_id[:8]}-build"
        log(f"=> Building in a container from {self._stack}")
        try:
            build_id = await self._access.call(executor.start, name, self._stack,
                                               engine.labels(app=plan.app_id, component=unit.name, role="build"),
                                               checkout, ca)
        except Exception as exc:
            raise StepFailed("BuildJobFailed", f"the build container could not start from {self._stack} "
                                               f"(shoal stack build makes it): {exc}") from exc
        try:
            image_env = await self._access.call(_env_of, self._stack)
            runner = executor.ContainerExecutor(self._access, build_id, image_env, ca is not None)
            workdir = PurePosixPath(buildpack_dir(unit.build.source_dir))
            ctx = buildpacks.BuildContext(
                source=checkout / unit.build.source_dir, app=workdir, layers=executor.WORKSPACE / ".layers",
                cache=PurePosixPath("/home/app/.cache/shoal-build"), kind=str(unit.kind),
                env=buildpacks.build_env(runner, dict(build_env)), user_env=dict(build_env),
                build_command=unit.build.build_command, environment_slug=unit.build.environment_slug)
            recipe = await buildpacks.plan(detection, ctx, buildpacks.Toolchains(runner, None), log)
            await buildpacks.execute(recipe.steps, runner, log)
            command = buildpacks.process_command(str(unit.kind), unit.name, unit.run_command, ctx.source,
                                                 dict(recipe.processes))
            labels.update({RUN_LABEL: command or "", WORKDIR_LABEL: str(workdir),
                           OUTPUT_LABEL: recipe.output_dir or ""})
            env = {**(runner.base_env() if ca else {}), **recipe.run_env}
            await self._access.call(executor.commit, build_id, tag, labels, env, str(workdir), command)
        finally:
            await executor.stopped(self._access, build_id)

    async def load(self, plan: AppPlan, unit: RunUnit, reference: str, reused: bool = True) -> Image:
        """A built image again (by tag or id), its static files copied out if a static site needs them."""
        attrs = await self._access.call(_attrs, reference)
        if attrs is None:
            raise StepFailed("BuildJobFailed", f"the image {reference} of {unit.name} is gone; redeploy to rebuild it")
        labels: Mapping[str, str] = (attrs.get("Config") or {}).get("Labels") or {}
        command = labels.get(RUN_LABEL) or unit.run_command or None
        image = Image(reference=reference, image_id=str(attrs["Id"]), run_command=command,
                      workdir=labels.get(WORKDIR_LABEL) or None, reused=reused)
        if unit.kind == Kind.STATIC_SITE:
            built_here = WORKDIR_LABEL in labels  # a buildpack build: output_dir is relative to source_dir
            base = labels.get(WORKDIR_LABEL) or (attrs.get("Config") or {}).get("WorkingDir") or "/"
            image = replace(image, static_root=await self._static_files(plan, unit, image, base, built_here,
                                                                        labels.get(OUTPUT_LABEL) or None))
        return image

    async def _static_files(self, plan: AppPlan, unit: RunUnit, image: Image, base: str, built_here: bool,
                            generated: str | None) -> Path:
        """The site's files, copied out of the image once per image: ``output_dir`` (absolute in a
        Dockerfile's image, else relative to the app's directory), else DigitalOcean's default dirs."""
        dest = self._sites / plan.app_id / unit.name / image.image_id.removeprefix("sha256:")[:16]
        if (dest / ".shoal-copied").is_file():
            return dest
        output = unit.build.output_dir
        if output:
            absolute = output.startswith("/") and not built_here
            candidates = [output if absolute else str(PurePosixPath(base) / output.strip("/"))]
        else:
            names = dict.fromkeys(filter(None, (generated, *buildpacks.STATIC_DIRS)))
            candidates = [str(PurePosixPath(base) / name) for name in names] + [base]
        for path in candidates:
            try:
                await self._access.call(images.copy_out, image.reference, path, dest)
            except StepFailed:
                continue
            if path != base or (dest / (unit.static.index_document if unit.static else "index.html")).is_file():
                (dest / ".shoal-copied").write_text(path, encoding="utf-8")
                return dest
        wanted = f"output_dir {output!r}" if output else "none of _static, dist, public, build (nor an index.html)"
        raise StepFailed("BuildJobFailed", f"static site {unit.name} has no files to serve: {wanted} was found in "
                                           "its image after the build")


def image_repository(engine: Engine, app_id: str, component: str) -> str:
    """Where an app's built images are tagged: per installation, app and component."""
    return f"localhost/shoal-{engine.owner[:8]}/{app_id}-{component}".lower()


def app_images(engine: Engine, app_id: str) -> list[str]:
    """Every image shoal built or pulled for the app (built ones by label, pulled ones by tag)."""
    prefix = f"localhost/shoal-{engine.owner[:8]}/{app_id}-".lower()
    pulled = [str(i["Id"]) for i in images.summaries(engine) if any(str(t).startswith(prefix) for t in i.get("RepoTags") or [])]
    return sorted({*images.labelled(engine, app=app_id), *pulled})


def buildpack_dir(source_dir: str) -> str:
    """Where a buildpack-built component's files are in its image (``source_dir`` under ``/workspace``)."""
    relative = PurePosixPath(source_dir.strip("/") or ".")
    return str(executor.WORKSPACE if str(relative) == "." else executor.WORKSPACE / relative)


def _env_of(engine: Engine, reference: str) -> dict[str, str]:
    """An image's own environment (``PATH`` ...), as its containers start with it."""
    found = _attrs(engine, reference) or {}
    pairs = [str(e).partition("=") for e in (found.get("Config") or {}).get("Env") or []]
    return {key: value for key, _, value in pairs if key}


def _image_id(engine: Engine, reference: str) -> str:
    found = _attrs(engine, reference)
    return str(found["Id"]) if found else "none"  # no stack image: a Dockerfile build does not need one


def _attrs(engine: Engine, reference: str) -> dict[str, Any] | None:
    try:
        return dict(engine.client.images.get(reference).attrs)
    except Exception:  # ImageNotFound, or a reference the engine cannot parse
        return None


def prune(engine: Engine, app_id: str, component: str, current: str) -> int:
    """Keep the newest ``KEEP_IMAGES`` builds of a component (rollbacks), ``current`` and what runs."""
    found = [(str(a.get("Created") or ""), str(a["Id"])) for i in images.labelled(
        engine, tagged_only=True, app=app_id, component=component) if (a := _attrs(engine, i)) is not None]
    keep = {current, *(image_id for _, image_id in sorted(found, reverse=True)[:KEEP_IMAGES])}
    return images.prune(engine, keep, app=app_id, component=component)
