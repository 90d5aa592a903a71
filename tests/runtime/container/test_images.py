"""Images against a real podman: pulls from a loopback registry with credentials, Dockerfile builds
(multi-stage, build args, layer cache, a Dockerfile outside the context), copying a directory out,
import, pruning that keeps what is referenced."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from shoal.domain.deployments import StepFailed
from shoal.runtime.container import containers, images
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.registries import image_ref, parse_mirrors
from tests.containers import build_hello, push_hello
from tests.registry import PASSWORD, USER, LoopbackRegistry


@pytest.fixture(scope="module")
def pushed(engine: Engine, stack_image: str, registry: LoopbackRegistry,
           tmp_path_factory: pytest.TempPathFactory) -> str:
    return push_hello(engine, registry, tmp_path_factory.mktemp("push")).path


def _logged() -> tuple[list[str], object]:
    lines: list[str] = []
    return lines, lines.append


def test_pull_through_a_mirror_with_credentials_records_the_digest(engine: Engine, registry: LoopbackRegistry,
                                                                   pushed: str) -> None:
    ref = image_ref({"registry_type": "GHCR", "registry": "team", "repository": "hello", "tag": "1"},
                    parse_mirrors([f"ghcr.io={registry.host}"]))
    lines: list[str] = []
    pulled = images.pull(engine, ref, (USER, PASSWORD), lines.append)
    assert pulled.digest and pulled.digest.startswith(f"{registry.host}/team/hello@sha256:")
    assert lines[0] == f"=> Pulling {ref.reference} as {USER}" and len(lines) > 2
    assert not any(PASSWORD in line for line in lines)


def test_wrong_credentials_fail_with_a_clear_reason_and_no_secret(engine: Engine, registry: LoopbackRegistry,
                                                                  pushed: str) -> None:
    ref = image_ref({"registry_type": "GHCR", "registry": "team", "repository": "hello", "tag": "1"},
                    parse_mirrors([f"ghcr.io={registry.host}"]))
    with pytest.raises(StepFailed) as failed:
        images.pull(engine, ref, (USER, "wrong-token"), lambda line: None)
    assert failed.value.code == "BuildJobFailed"
    assert "refused the credentials" in failed.value.message and "wrong-token" not in failed.value.message
    with pytest.raises(StepFailed, match="needs credentials"):
        images.pull(engine, ref, None, lambda line: None)


def test_a_missing_image_is_named(engine: Engine, registry: LoopbackRegistry, pushed: str) -> None:
    ref = image_ref({"registry_type": "GHCR", "registry": "team", "repository": "nothing-here"},
                    parse_mirrors([f"ghcr.io={registry.host}"]))
    with pytest.raises(StepFailed, match="was not found in registry"):
        images.pull(engine, ref, (USER, PASSWORD), lambda line: None)


def test_multi_stage_build_uses_the_layer_cache_the_second_time(engine: Engine, stack_image: str,
                                                                tmp_path: Path) -> None:
    tag = "localhost/shoal-test/hello:multi"
    build_hello(engine, tmp_path, tag)  # warm: the push fixture removed an image of the same steps
    first = build_hello(engine, tmp_path, tag)
    again = build_hello(engine, tmp_path, tag)
    assert again.image_id == first.image_id, (first, again)
    assert again.cached_steps >= 3
    assert engine.client.images.get(tag).attrs["Size"] < 50_000_000  # the last stage only: FROM scratch


def test_build_args_reach_the_build_and_a_dockerfile_outside_the_context_is_used(
        engine: Engine, stack_image: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "api").mkdir(parents=True)
    (repo / "api" / "app.txt").write_text("from the context\n")
    (repo / "docker").mkdir()
    (repo / "docker" / "api.Dockerfile").write_text(
        f"FROM {stack_image}\nARG GREETING\nCOPY app.txt /srv/app.txt\nRUN echo \"built with $GREETING\" > /srv/arg\n")
    lines: list[str] = []
    images.build(engine, repo_root=repo, source_dir="/api", dockerfile="docker/api.Dockerfile",
                 tag="localhost/shoal-test/args:1", build_args={"GREETING": "hola"},
                 labels=engine.labels(role="test"), log=lines.append)
    assert any("STEP" in line or "Step" in line for line in lines)
    images.copy_out(engine, "localhost/shoal-test/args:1", "/srv", tmp_path / "out")
    assert (tmp_path / "out" / "arg").read_text() == "built with hola\n"
    assert (tmp_path / "out" / "app.txt").read_text() == "from the context\n"


def test_a_folder_holding_one_folder_is_copied_out_whole(engine: Engine, stack_image: str, tmp_path: Path) -> None:
    # Django's collectstatic: staticfiles/ holds only hello/site.css. It came out as site.css at the top
    # (the single folder was taken for an archive wrapper) and the site answered 404.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {stack_image}\nRUN mkdir -p /site/hello && echo 'body {{}}' > /site/hello/site.css\n")
    images.build(engine, repo_root=tmp_path, source_dir="/", dockerfile="Dockerfile",
                 tag="localhost/shoal-test/onefolder:1", build_args={}, labels=engine.labels(role="test"),
                 log=lambda line: None)
    images.copy_out(engine, "localhost/shoal-test/onefolder:1", "/site", tmp_path / "out")
    assert (tmp_path / "out" / "hello" / "site.css").read_text() == "body {}\n"


def test_paths_that_leave_the_repository_are_refused(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    for source_dir, dockerfile in (("/../", "Dockerfile"), ("/", "../../etc/passwd")):
        with pytest.raises(StepFailed, match="leaves the repository"):
            images.build(engine, repo_root=tmp_path / "repo", source_dir=source_dir, dockerfile=dockerfile,
                         tag="localhost/shoal-test/x:1", build_args={}, labels={}, log=lambda line: None)


def test_a_failing_step_is_a_non_zero_build(engine: Engine, stack_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {stack_image}\nRUN echo about to fail && exit 7\n")
    lines: list[str] = []
    with pytest.raises(StepFailed) as failed:
        images.build(engine, repo_root=tmp_path, source_dir="/", dockerfile="Dockerfile",
                     tag="localhost/shoal-test/fails:1", build_args={}, labels=engine.labels(role="test"),
                     log=lines.append)
    assert failed.value.code == "BuildJobExitNonZero"
    assert "about to fail" in lines


def test_copy_out_refuses_root_and_names_a_missing_dir(engine: Engine, stack_image: str, tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="absolute path"):
        images.copy_out(engine, stack_image, "/", tmp_path / "x")
    with pytest.raises(StepFailed, match="does not exist"):
        images.copy_out(engine, stack_image, "/no/such/dir", tmp_path / "x")
    assert not containers.listed(engine, role="copy")


def test_import_and_prune_keep_what_is_referenced(engine: Engine, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "os-release").write_text("ID=shoal-test\n")
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as archive:
        archive.add(rootfs, arcname=".")
    kept = images.import_rootfs(engine, tarball, "localhost/shoal-test/imported:one", [])
    (rootfs / "etc" / "other").write_text("2\n")
    with tarfile.open(tarball, "w") as archive:
        archive.add(rootfs, arcname=".")
    dropped = images.import_rootfs(engine, tarball, "localhost/shoal-test/imported:two", [])
    assert images.exists(engine, "localhost/shoal-test/imported:one")
    for image_id in (kept, dropped):  # imports carry no labels: label them as the runtime's builds are
        images.tag(engine, image_id, f"localhost/shoal-test/imported:{image_id[7:19]}")
    labelled = images.labelled(engine)
    assert kept not in labelled  # an unlabelled image is never pruned...
    images.remove(engine, [dropped])
    assert images.exists(engine, "localhost/shoal-test/imported:one")
    assert not images.exists(engine, "localhost/shoal-test/imported:two")
    images.remove(engine, [kept])


def test_prune_spares_kept_and_used_images(engine: Engine, stack_image: str, tmp_path: Path) -> None:
    made = []
    for n in range(3):
        (tmp_path / "Dockerfile").write_text(f"FROM {stack_image}\nRUN echo {n} > /n\n")
        made.append(images.build(engine, repo_root=tmp_path, source_dir="/", dockerfile="Dockerfile",
                                 tag=f"localhost/shoal-test/prune:{n}", build_args={},
                                 labels=engine.labels(role="prune"), log=lambda line: None).image_id)
    holder = containers.run(engine, containers.RunSpec(name="shoal-test-prune-user", image=made[1],
                                                       labels=engine.labels(role="prune"), command=["sleep", "60"]))
    try:
        assert images.prune(engine, keep=["localhost/shoal-test/prune:0"], role="prune") == 1
        assert images.exists(engine, made[0]) and images.exists(engine, made[1])
        assert not images.exists(engine, made[2])
    finally:
        containers.remove(engine, holder.id)


def test_a_push_the_registry_refuses_is_a_build_failure_naming_the_target(engine: Engine, registry: LoopbackRegistry,
                                                                          pushed: str) -> None:
    """The Kubernetes runtime pushes what it builds (tests/e2e/test_kubernetes.py pushes for real);
    a registry that refuses (this one wants credentials, and shoal pushes with none) fails the build
    with the target named, not a crash."""
    image_id = str(engine.client.images.get(f"{registry.host}/{pushed}:1").id)
    lines: list[str] = []
    with pytest.raises(StepFailed) as failed:
        images.push(engine, image_id, f"{registry.host}/team/refused", "2", lines.append)
    assert failed.value.code == "BuildJobFailed"
    assert failed.value.message.startswith(f"pushing {registry.host}/team/refused:2 failed")
    assert lines[0] == f"=> Pushing {registry.host}/team/refused:2"


@pytest.mark.parametrize(("event", "digest"), [
    ({"aux": {"Tag": "2", "Digest": "sha256:" + "a" * 64, "Size": 527}}, "sha256:" + "a" * 64),
    ({"status": "2: digest: sha256:" + "b" * 64 + " size: 527"}, "sha256:" + "b" * 64),
    ({"status": "Pushing", "id": "sha256:" + "c" * 64}, None),  # a layer, not the manifest
])
def test_the_pushed_digest_is_read_from_either_engine_s_events(event: dict[str, object], digest: str | None) -> None:
    assert images._pushed_digest(event) == digest
