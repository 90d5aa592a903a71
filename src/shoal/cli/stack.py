"""``shoal stack build``: make (or find, or load from the cache) the stack image buildpack builds run in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from shoal.core.settings import ContainerSettings, Settings

stack_app = typer.Typer(help="The stack image: Debian bookworm with the buildpacks' toolchains.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", envvar="SHOAL_DATA_DIR",
                                                 help="State directory (where shoal's podman socket lives).")]
EngineUrl = Annotated[Optional[str], typer.Option(
    "--container-engine-url", envvar="SHOAL_CONTAINER_ENGINE_URL",
    help="The engine's API [default: shoal's podman service if podman is installed, else DOCKER_HOST, "
         "else unix:///var/run/docker.sock].")]
Mirrors = Annotated[Optional[list[str]], typer.Option(
    "--registry-mirror", help="FROM=TO: pull images of registry FROM from TO instead (repeatable).")]


@stack_app.command("build")
def stack_build(
    data_dir: DataDir = None,
    container_engine_url: EngineUrl = None,
    registry_mirror: Mirrors = None,
    stack_image: Annotated[str, typer.Option(help="The image to make.")] = ContainerSettings().stack_image,
    cache_dir: Annotated[Optional[Path], typer.Option(
        help="Where the built image is cached [default: $XDG_CACHE_HOME/shoal/stack].")] = None,
    rebuild: Annotated[bool, typer.Option(help="Build again even when an up-to-date image exists.")] = False,
) -> None:
    """Make the stack image: reused when its recipe is unchanged, else loaded from the cache, else built
    (from debian:bookworm when a registry answers, else by debootstrap from this machine's Debian mirror)."""
    from shoal.domain.deployments import StepFailed
    from shoal.runtime.container.engine import EngineUnavailable
    from shoal.runtime.container.registries import parse_mirrors
    from shoal.runtime.container.session import open_engine
    from shoal.runtime.container.stack import ensure_stack

    settings = Settings.from_env(data_dir=data_dir)
    try:
        mirrors = parse_mirrors(registry_mirror or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        session = open_engine(settings.data_dir, container_engine_url, mirrors)
    except EngineUnavailable as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    try:
        console.print(f"container engine: {session.engine.info.describe()}", highlight=False, soft_wrap=True)
        image_id = ensure_stack(session.engine, lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True),
                                reference=stack_image, cache_dir=cache_dir, mirrors=mirrors, rebuild=rebuild)
    except StepFailed as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        session.close()
    console.print(f"{stack_image} {image_id}", highlight=False)
