"""``shoal apps deployments|restart|rollback``, and ``--wait``: follow a deployment to its end.

``--wait`` decides like doctl: done when ``success_steps == total_steps``; failed when ``error_steps > 0``
or the phase is ERROR, CANCELED or SUPERSEDED, with the failing step's reason printed (exit 3).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from shoal.cli.apps_session import Session, connected
from shoal.cli.output import (
    EXIT_DEPLOY_FAILED,
    CliError,
    deployments_table,
    emit,
    err,
    progress_text,
    rollback_check_table,
)

POLL_SECONDS = (0.1, 2.0)  # first and longest pause between polls: quick on a fast server, kind to a slow one
FAILED_PHASES = {"ERROR", "CANCELED", "SUPERSEDED"}

AppArg = Annotated[str, typer.Argument(help="App id or name.", show_default=False)]
DeploymentArg = Annotated[str, typer.Argument(help="Deployment id.", show_default=False)]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the deployment to finish; exit 3 if it fails.")]

deployments_app = typer.Typer(help="List, inspect, create and cancel an app's deployments.", no_args_is_help=True)


def _progress_line(dep: dict[str, Any]) -> str:
    running = [s.get("name") for s in (dep.get("progress") or {}).get("steps") or [] if s.get("status") == "RUNNING"]
    step = f" ({', '.join(str(n) for n in running)})" if running else ""
    return f"deployment {dep.get('id')}: {dep.get('phase')} {progress_text(dep)}{step}"


def _failure(dep: dict[str, Any]) -> str | None:
    progress = dep.get("progress") or {}
    if progress.get("error_steps", 0) > 0 or dep.get("phase") in FAILED_PHASES:
        return dep.get("phase") or "ERROR"
    return None


def _failing_step(steps: list[dict[str, Any]], trail: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]] | None:
    """The deepest step in ERROR, with its path (``build/components/web``)."""
    for step in steps:
        if step.get("status") != "ERROR":
            continue
        here = (*trail, str(step.get("name", "")))
        deeper = _failing_step(step.get("steps") or [], here)
        return deeper or ("/".join(here), step)
    return None


def wait_deployment(session: Session, app_id: str, deployment_id: str) -> dict[str, Any]:
    """Poll until the deployment ends; return it when it succeeded, raise exit 3 when it did not."""
    last = ""
    pause = POLL_SECONDS[0]
    while True:
        dep: dict[str, Any] = session.client.apps.get_deployment(app_id, deployment_id)["deployment"]
        line = _progress_line(dep)
        if line != last:
            err.print(line, highlight=False)
            last = line
        progress = dep.get("progress") or {}
        failed = _failure(dep)
        if failed:
            raise CliError(_failure_message(dep, failed), EXIT_DEPLOY_FAILED)
        if dep.get("phase") == "ACTIVE" or 0 < progress.get("total_steps", 0) == progress.get("success_steps"):
            return dep
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_SECONDS[1])


def _failure_message(dep: dict[str, Any], phase: str) -> str:
    found = _failing_step((dep.get("progress") or {}).get("steps") or [])
    text = f"deployment {dep.get('id')} {'failed' if phase == 'ERROR' else phase.lower()}"
    if found:
        path, step = found
        reason = step.get("reason") or {}
        text += f" at step {path}"
        if reason:
            text += f": {reason.get('code', '')}: {reason.get('message', '')}"
    return text


def started_deployment(session: Session, app: dict[str, Any]) -> str | None:
    """The deployment a create or update just started."""
    for key in ("pending_deployment", "in_progress_deployment"):
        if (app.get(key) or {}).get("id"):
            return str(app[key]["id"])
    deps = session.client.apps.list_deployments(app["id"], per_page=1).get("deployments") or []
    return str(deps[0]["id"]) if deps and deps[0].get("phase") not in {"ACTIVE", *FAILED_PHASES} else None


def _show(session: Session, dep: dict[str, Any], app_id: str, wait: bool) -> None:
    if wait:
        dep = wait_deployment(session, app_id, str(dep["id"]))
    emit(dep, session.format, lambda d: deployments_table([d]))


@deployments_app.command("list")
@connected
def deployments_list(session: Session, app: AppArg) -> None:
    """List an app's deployments, newest first."""
    app_id = session.app_id(app)
    deps: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = session.client.apps.list_deployments(app_id, page=page, per_page=100)
        deps.extend(answer.get("deployments") or [])
        if not (answer.get("links") or {}).get("pages", {}).get("next"):
            break
        page += 1
    emit(deps, session.format, deployments_table)


@deployments_app.command("get")
@connected
def deployments_get(session: Session, app: AppArg, deployment: DeploymentArg) -> None:
    """Show one deployment (phase, progress, cause)."""
    emit(session.client.apps.get_deployment(session.app_id(app), deployment)["deployment"], session.format,
         lambda d: deployments_table([d]))


@deployments_app.command("create")
@connected
def deployments_create(session: Session, app: AppArg, wait: Wait = False,
                       force_rebuild: Annotated[bool, typer.Option("--force-rebuild",
                                                                   help="Rebuild even unchanged sources.")] = False,
                       ) -> None:
    """Start a new deployment of the app's current spec (doctl: create-deployment)."""
    app_id = session.app_id(app)
    dep = session.client.apps.create_deployment(app_id, {"force_build": force_rebuild})["deployment"]
    _show(session, dep, app_id, wait)


@deployments_app.command("cancel")
@connected
def deployments_cancel(session: Session, app: AppArg, deployment: DeploymentArg) -> None:
    """Cancel a deployment that has not finished."""
    app_id = session.app_id(app)
    emit(session.client.apps.cancel_deployment(app_id, deployment)["deployment"], session.format,
         lambda d: deployments_table([d]))


@connected
def restart(session: Session, app: AppArg, wait: Wait = False,
            components: Annotated[str | None, typer.Option(
                "--components", help="Comma-separated components to restart (default: all).")] = None) -> None:
    """Restart the app's running components without rebuilding (a new deployment)."""
    app_id = session.app_id(app)
    body = {"components": [c.strip() for c in components.split(",") if c.strip()]} if components else {}
    _show(session, session.client.apps.restart(app_id, body)["deployment"], app_id, wait)


class _RollbackGroup(TyperGroup):
    """``rollback APP DEPLOYMENT`` runs the hidden ``create``; ``rollback validate|commit|revert`` as usual."""

    def parse_args(self, ctx: Any,  # click.Context (typer vendors its own click)
                   args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


rollback_app = typer.Typer(
    cls=_RollbackGroup, no_args_is_help=True,
    help="Roll back to an earlier deployment.\n\n"
         "shoal apps rollback APP DEPLOYMENT [--skip-pin] [--wait]: deploy DEPLOYMENT's spec and pin the app to "
         "it (unless --skip-pin); then `rollback commit APP` keeps it, `rollback revert APP` undoes it. "
         "`rollback validate APP DEPLOYMENT` checks first.")
SkipPin = Annotated[bool, typer.Option("--skip-pin", help="Do not pin the app: later deployments may replace it.")]


@rollback_app.command("create", hidden=True)
@connected
def rollback_create(session: Session, app: AppArg, deployment: DeploymentArg, skip_pin: SkipPin = False,
                    wait: Wait = False) -> None:
    """Roll the app back to DEPLOYMENT (the default subcommand)."""
    app_id = session.app_id(app)
    dep = session.client.apps.create_rollback(app_id, {"deployment_id": deployment, "skip_pin": skip_pin})
    _show(session, dep["deployment"], app_id, wait)


@rollback_app.command("validate")
@connected
def rollback_validate(session: Session, app: AppArg, deployment: DeploymentArg, skip_pin: SkipPin = False) -> None:
    """Check whether the app can be rolled back to DEPLOYMENT (exit 1 if not)."""
    result = session.client.apps.validate_rollback(session.app_id(app),
                                                   {"deployment_id": deployment, "skip_pin": skip_pin})
    emit(result, session.format, rollback_check_table)
    if not result.get("valid"):
        raise typer.Exit(1)


@rollback_app.command("commit")
@connected
def rollback_commit(session: Session, app: AppArg) -> None:
    """Keep the rollback: unpin the app so new deployments may follow."""
    app_id = session.app_id(app)
    session.client.apps.commit_rollback(app_id)
    emit({"id": app_id, "committed": True}, session.format, lambda _: f"rollback of {app_id} committed")


@rollback_app.command("revert")
@connected
def rollback_revert(session: Session, app: AppArg, wait: Wait = False) -> None:
    """Undo the rollback: deploy the spec from before it."""
    app_id = session.app_id(app)
    _show(session, session.client.apps.revert_rollback(app_id)["deployment"], app_id, wait)
