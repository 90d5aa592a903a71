"""Git-sourced components on the Kubernetes runtime, where no cluster is needed: what the build step
says when what it needs is missing. The runtime is made by ``shoal.runtime.registry`` from Settings, as
``shoal serve`` makes it, over a real SQLite store and a real git repository; its kubeconfig names a
cluster nobody asks (fetch and build never talk to the cluster). Building and pushing for real, on
the real cluster: ``tests/e2e/test_kubernetes.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("kubernetes")

from shoal.core.secrets import SecretBox  # noqa: E402
from shoal.core.settings import ContainerSettings, KubernetesSettings, RuntimeSettings, Settings  # noqa: E402
from shoal.domain.deployments import StepFailed  # noqa: E402
from shoal.domain.plan import AppPlan, make_plan  # noqa: E402
from shoal.domain.ports import Runtime  # noqa: E402
from shoal.ingress.table import RouteTable  # noqa: E402
from shoal.runtime.container.conf import registries_conf_text  # noqa: E402
from shoal.runtime.local.sources import LocalSources  # noqa: E402
from shoal.runtime.registry import RuntimeContext, create_runtime  # noqa: E402
from shoal.store.database import open_database  # noqa: E402
from tests.e2e.apps import make_repo  # noqa: E402

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def runtime_of(tmp: Path, registry: str | None, engine_url: str | None = None) -> Runtime:
    (tmp / "kubeconfig").write_text(KUBECONFIG)
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    settings = Settings(data_dir=data, runtime=RuntimeSettings(
        backend="kubernetes", container=ContainerSettings(engine_url=engine_url),
        kubernetes=KubernetesSettings(kubeconfig=tmp / "kubeconfig", image_registry=registry)))
    database = open_database(f"sqlite:///{tmp / 'shoal.db'}")
    return create_runtime(RuntimeContext(settings, RouteTable(), SecretBox(bytes(32)), lambda name: None,
                                         database.jobs, LocalSources(data, (tmp,))))


@pytest.fixture
def plan(tmp_path: Path) -> Iterator[AppPlan]:
    repo = make_repo(tmp_path / "repo", {"Dockerfile": "FROM busybox\nCMD [\"httpd\", \"-f\"]\n"})
    spec = {"name": "built", "services": [{"name": "web", "dockerfile_path": "Dockerfile",
                                           "git": {"repo_clone_url": str(repo), "branch": "main"}}]}
    yield make_plan(spec, app_id="app-1", deployment_id="dep-1", account_id="acct")


async def fetch_then_build(runtime: Runtime, plan: AppPlan) -> tuple[str, list[str]]:
    lines: list[str] = []
    unit = plan.unit("web")
    try:
        commit = await runtime.fetch(plan, unit, lambda stage, component, line: lines.append(line))
        with pytest.raises(StepFailed) as failed:
            await asyncio.wait_for(runtime.build(plan, replace(unit, commit=commit), lambda *a: None), 60)
    finally:
        await runtime.close()
    assert len(commit) == 40, lines  # the source was fetched (through the source policy) before the build failed
    assert failed.value.code == "BuildJobFailed"
    return failed.value.message, lines


@pytest.mark.timeout(120)
def test_without_an_image_registry_the_build_names_the_missing_flag(tmp_path: Path, plan: AppPlan) -> None:
    message, _ = asyncio.run(fetch_then_build(runtime_of(tmp_path, None), plan))
    assert "web is built from git" in message and "--image-registry" in message and "podman" in message


@pytest.mark.timeout(120)
def test_without_a_container_engine_the_build_names_it(tmp_path: Path, plan: AppPlan) -> None:
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    message, _ = asyncio.run(fetch_then_build(runtime_of(tmp_path, "127.0.0.1:5999", nowhere), plan))
    assert "needs a container engine on shoal's host" in message and "podman" in message
    assert nowhere in message  # which engine was asked


def test_a_loopback_image_registry_is_spoken_to_over_plain_http() -> None:
    text = registries_conf_text({}, ["127.0.0.1:5999", "registry.example.com"])
    assert 'location = "127.0.0.1:5999"\ninsecure = true' in text
    assert "registry.example.com" not in text  # remote registries keep TLS (nothing to write)
