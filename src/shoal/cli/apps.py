"""``shoal apps ...``: the Apps API from the command line, with doctl's command names and flags.

Everything goes through pydo (DigitalOcean's own client), so the same commands work against a shoal
server and against ``https://api.digitalocean.com``. Options shared by every command, errors and exit
codes live in ``apps_session``; printing in ``output``; deployments and rollbacks in
``apps_deployments``; logs in ``apps_logs``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from shoal.cli.apps_deployments import (
    AppArg,
    Wait,
    deployments_app,
    restart,
    rollback_app,
    started_deployment,
    wait_deployment,
)
from shoal.cli.apps_logs import logs
from shoal.cli.apps_session import Session, connected
from shoal.cli.output import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    CliError,
    alerts_table,
    apps_table,
    emit,
    err,
    instance_sizes_table,
    regions_table,
    spec_yaml,
)
from shoal.cli.spec_file import read_spec_file

apps_app = typer.Typer(
    no_args_is_help=True,
    help="Manage apps through the DigitalOcean Apps API (doctl's `apps` commands).\n\n"
         "Talks to --api-url / SHOAL_API_URL with --token / SHOAL_TOKEN / DIGITALOCEAN_TOKEN; with neither, to "
         "the local `shoal serve` (https://127.0.0.1:8443) using the admin token and CA in its data dir. "
         "APP is an app id or name. Output: -o table|json|yaml (table on a terminal, json otherwise).\n\n"
         + EXIT_CODES_HELP)
spec_app = typer.Typer(help="Get an app's spec, or validate one on the server (`shoal spec validate` works "
                            "offline).", no_args_is_help=True)
alerts_app = typer.Typer(help="An app's alerts.", no_args_is_help=True)
apps_app.add_typer(spec_app, name="spec")
apps_app.add_typer(alerts_app, name="alerts")
apps_app.add_typer(deployments_app, name="deployments")
apps_app.add_typer(rollback_app, name="rollback")
apps_app.command("restart")(restart)
apps_app.command("logs")(logs)

SpecArg = Annotated[str, typer.Option("--spec", help="App spec file (YAML or JSON, .do/deploy.template.yaml "
                                                     "form too); - reads stdin.", show_default=False)]


def _finish(session: Session, app: dict[str, Any], wait: bool) -> None:
    """Print the app; with ``--wait``, only once its new deployment has finished."""
    if wait:
        deployment = started_deployment(session, app)
        if deployment is None:
            err.print("no deployment was started; nothing to wait for", highlight=False)
        else:
            wait_deployment(session, str(app["id"]), deployment)
            app = session.client.apps.get(app["id"])["app"]
    emit(app, session.format, lambda a: apps_table([a]))


@apps_app.command("create")
@connected
def create(session: Session, spec: SpecArg, wait: Wait = False,
           upsert: Annotated[bool, typer.Option("--upsert", help="Update the app if one with the spec's name "
                                                               "exists.")] = False) -> None:
    """Create an app from a spec file."""
    session.spec_file = read_spec_file(spec)
    existing = session.app_named(str(session.spec_file.spec.get("name", ""))) if upsert else None
    if existing is not None:
        app = session.client.apps.update(existing["id"], {"spec": session.spec_file.spec})["app"]
    else:
        app = session.client.apps.create({"spec": session.spec_file.spec})["app"]
    _finish(session, app, wait)


@apps_app.command("get")
@connected
def get(session: Session, app: AppArg) -> None:
    """Show one app."""
    emit(session.find_app(app), session.format, lambda a: apps_table([a]))


@apps_app.command("list")
@connected
def list_apps(session: Session) -> None:
    """List all apps."""
    emit(session.all_apps(), session.format, apps_table)


@apps_app.command("update")
@connected
def update(session: Session, app: AppArg, spec: SpecArg, wait: Wait = False,
           update_sources: Annotated[bool, typer.Option("--update-sources", help="Also pull the latest source "
                                                                                 "of every component.")] = False,
           ) -> None:
    """Replace an app's spec (starts a deployment when something changed)."""
    app_id = session.app_id(app)
    session.spec_file = read_spec_file(spec)
    body = {"spec": session.spec_file.spec, "update_all_source_versions": update_sources}
    _finish(session, session.client.apps.update(app_id, body)["app"], wait)


@apps_app.command("delete")
@connected
def delete(session: Session, app: AppArg,
           force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")] = False,
           ) -> None:
    """Delete an app and everything it runs."""
    app_id = session.app_id(app)
    if not force:
        if not sys.stdin.isatty():
            raise CliError("refusing to delete without confirmation: pass --force", EXIT_USAGE)
        typer.confirm(f"Delete app {app} ({app_id})?", abort=True)
    session.client.apps.delete(app_id)
    emit({"id": app_id, "deleted": True}, session.format, lambda _: f"deleted app {app_id}")


@spec_app.command("get")
@connected
def spec_get(session: Session, app: AppArg) -> None:
    """Print an app's spec (YAML unless -o json)."""
    found = session.find_app(app)
    emit(found["spec"], session.format, spec_yaml)


@spec_app.command("validate")
@connected
def spec_validate(session: Session,
                  file: Annotated[str, typer.Argument(help="Spec file (YAML or JSON); - reads stdin.")]) -> None:
    """Validate a spec on the server (propose); print the normalised spec, or each problem (exit 1)."""
    session.spec_file = read_spec_file(file)
    proposal = session.client.apps.validate_app_spec({"spec": session.spec_file.spec})
    emit(proposal, session.format, lambda p: spec_yaml(p["spec"]))


@alerts_app.command("list")
@connected
def alerts_list(session: Session, app: AppArg) -> None:
    """List an app's alerts (doctl: list-alerts)."""
    emit(session.client.apps.list_alerts(session.app_id(app)).get("alerts") or [], session.format, alerts_table)


@apps_app.command("regions")
@connected
def regions(session: Session) -> None:
    """List the regions apps can run in (doctl: list-regions)."""
    emit(session.client.apps.list_regions().get("regions") or [], session.format, regions_table)


@apps_app.command("instance-sizes")
@connected
def instance_sizes(session: Session) -> None:
    """List instance sizes and prices (doctl: tier instance-size list)."""
    emit(session.client.apps.list_instance_sizes().get("instance_sizes") or [], session.format,
         instance_sizes_table)
