"""Backends by name: ``shoal serve --runtime NAME``.

Each backend is made from one ``RuntimeContext`` (what any of them may need from the platform), and
is imported only when chosen, so a backend's client library is not loaded by the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.core.errors import BadRequest
from shoal.core.secrets import SecretBox
from shoal.core.settings import Settings
from shoal.domain.ports import JobStore, RoutePublisher, Runtime, SourcePolicy

if TYPE_CHECKING:
    from shoal.runtime.container.session import EngineSession

Clusters = Callable[[str], tuple[str, str] | None]  # a registered database cluster's (engine, URL) by name


@dataclass(frozen=True)
class RuntimeContext:
    settings: Settings
    routes: RoutePublisher
    box: SecretBox
    clusters: Clusters
    jobs: JobStore
    sources: SourcePolicy | None = None  # which local sources each account may build from
    engine: EngineSession | None = None  # the container engine ``serve`` opened at start, if it did


def _simulate(ctx: RuntimeContext) -> Runtime:
    from shoal.runtime.simulate import SimulateRuntime

    return SimulateRuntime(step_seconds=ctx.settings.runtime.simulate_step_seconds)


def _local(ctx: RuntimeContext) -> Runtime:
    from shoal.runtime.local.reaper import Reaper
    from shoal.runtime.local.runtime import LocalRuntime

    # Several servers may share a PostgreSQL: an app's processes must not outlive the server that
    # runs them, since its new owner restores the app (README: Several servers on one PostgreSQL).
    reaper = Reaper() if ctx.settings.shared_database else None
    return LocalRuntime(ctx.settings.data_dir, ctx.routes, dict(ctx.settings.host_env), ctx.box, clusters=ctx.clusters,
                        reaper=reaper, sources=ctx.sources, apps_dir=ctx.settings.runtime.apps_dir)


def _kubernetes(ctx: RuntimeContext) -> Runtime:
    """Git-sourced images are built by the container runtime's builder on the engine the container
    runtime would use (``--container-engine-url``, else shoal's podman), opened at the first build."""
    from shoal.runtime.kubernetes.connection import Target
    from shoal.runtime.kubernetes.runtime import KubeOptions, KubernetesRuntime

    kube, container, data_dir = ctx.settings.runtime.kubernetes, ctx.settings.runtime.container, ctx.settings.data_dir
    mirrors = dict(container.registry_mirrors)
    options = KubeOptions(Target(kube.kubeconfig, kube.context), data_dir, kube.image_registry,
                          kube.ingress_class, mirrors)
    registry = kube.image_registry
    if not registry:
        return KubernetesRuntime(options, ctx.routes, ctx.box, ctx.sources)

    from shoal.runtime.container.access import EngineAccess
    from shoal.runtime.container.builds import DEBIAN_CA_BUNDLE
    from shoal.runtime.container.session import open_engine
    from shoal.runtime.kubernetes.builds import ClusterImages
    from shoal.runtime.local.sources import SourceCache

    def images(sources: SourceCache) -> ClusterImages:
        access = EngineAccess(lambda: open_engine(data_dir, container.engine_url, mirrors, [registry]))
        ca = ctx.settings.host_env.get("SSL_CERT_FILE")
        return ClusterImages(registry, access, sources, data_dir, container.stack_image, mirrors,
                             Path(ca) if ca else DEBIAN_CA_BUNDLE)

    return KubernetesRuntime(options, ctx.routes, ctx.box, ctx.sources, images)


def _container(ctx: RuntimeContext) -> Runtime:
    """Cheap to make: the engine is the one ``serve`` opened, or is opened at the first step that needs it."""
    from shoal.runtime.container.access import EngineAccess
    from shoal.runtime.container.builds import DEBIAN_CA_BUNDLE
    from shoal.runtime.container.runtime import ContainerRuntime
    from shoal.runtime.container.session import open_engine

    container, data_dir = ctx.settings.runtime.container, ctx.settings.data_dir
    mirrors = dict(container.registry_mirrors)
    access = EngineAccess(lambda: open_engine(data_dir, container.engine_url, mirrors), ctx.engine)
    ca = ctx.settings.host_env.get("SSL_CERT_FILE")
    return ContainerRuntime(data_dir, ctx.routes, access, container.stack_image, mirrors, ctx.box,
                            clusters=ctx.clusters, ca_bundle=Path(ca) if ca else DEBIAN_CA_BUNDLE,
                            sources=ctx.sources)


BACKENDS: dict[str, Callable[[RuntimeContext], Runtime]] = {
    "simulate": _simulate,
    "local": _local,
    "container": _container,
    "kubernetes": _kubernetes,
}


def create_runtime(ctx: RuntimeContext) -> Runtime:
    factory = BACKENDS.get(ctx.settings.runtime.backend)
    if factory is None:
        raise BadRequest(f"unknown runtime {ctx.settings.runtime.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return factory(ctx)
