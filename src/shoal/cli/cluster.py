"""``shoal cluster``: database clusters that production databases (``cluster_name``) bind to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from shoal.core.errors import ShoalError
from shoal.core.settings import Settings

cluster_app = typer.Typer(help="Register database clusters for production databases (run where the data dir is).",
                          no_args_is_help=True)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", envvar="SHOAL_DATA_DIR", help="State directory.")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", envvar="SHOAL_DATABASE_URL",
                                                    help="PostgreSQL URL of shoal's state, if not SQLite.")]


def _clusters(data_dir: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from shoal.bootstrap import build_platform

    return build_platform(Settings.from_env(data_dir=data_dir, database_url=database_url))


@cluster_app.command("add")
def cluster_add(
    name: Annotated[str, typer.Argument(help="The name specs use as databases[].cluster_name.")],
    engine: Annotated[str, typer.Option(help="PG, MYSQL, REDIS, VALKEY, MONGODB, KAFKA or OPENSEARCH.")],
    url: Annotated[str, typer.Option(help="Connection URL, e.g. postgresql://user:pass@host:5432/db.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a cluster; its URL is stored encrypted."""
    platform = _clusters(data_dir, database_url)
    try:
        cluster = platform.clusters().add(name, engine, url)
    except ShoalError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    console.print(f"registered {cluster.name} ({cluster.engine} at {cluster.safe_url})", highlight=False)


@cluster_app.command("list")
def cluster_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List registered clusters (URLs without passwords)."""
    platform = _clusters(data_dir, database_url)
    try:
        found = platform.clusters().list()
    finally:
        platform.close()
    table = Table("name", "engine", "url")
    for cluster in found:
        table.add_row(cluster.name, cluster.engine, cluster.safe_url)
    console.print(table)


@cluster_app.command("remove")
def cluster_remove(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Forget a cluster (apps bound to it fail their next deployment with DatabaseNotFound)."""
    platform = _clusters(data_dir, database_url)
    try:
        platform.clusters().remove(name)
    except ShoalError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    finally:
        platform.close()
    console.print(f"removed {name}")
