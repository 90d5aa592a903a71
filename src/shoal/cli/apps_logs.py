"""``shoal apps logs``: a deployment's build, deploy or run logs, downloaded or followed live.

History is a plain-text download of ``historic_urls[0]``; ``--follow`` reads the ``live_url``
websocket (``{"data": "..."}`` text frames, as doctl does). When the socket drops while the
deployment can still produce lines, it reconnects with a fresh URL and skips the lines it has
already printed (the live stream replays from the start).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from enum import Enum
from typing import Annotated, Any

import typer

from shoal.cli.apps_deployments import AppArg
from shoal.cli.apps_session import Session, connected
from shoal.cli.output import EXIT_API, CliError, err

RECONNECTS = 5
ENDED = {"ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"}


class LogType(str, Enum):
    build = "build"
    deploy = "deploy"
    run = "run"
    run_restarted = "run_restarted"


def _deployment_for(session: Session, app_id: str, log_type: LogType) -> str:
    """doctl's choice: the active deployment for run logs, the one in progress for build/deploy logs."""
    app = session.client.apps.get(app_id)["app"]
    keys = ["active_deployment", "in_progress_deployment", "pending_deployment"]
    if log_type in (LogType.build, LogType.deploy):
        keys = keys[1:] + keys[:1]
    for key in keys:
        if (app.get(key) or {}).get("id"):
            return str(app[key]["id"])
    deps = session.client.apps.list_deployments(app_id, per_page=1).get("deployments") or []
    if not deps:
        raise CliError(f"app {app_id} has no deployments yet")
    return str(deps[0]["id"])


def _urls(session: Session, app_id: str, deployment: str, component: str | None, log_type: LogType,
          follow: bool, tail: int | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"type": log_type.value.upper(), "follow": follow}
    if tail is not None:
        kwargs["params"] = {"tail_lines": tail}
    if component:
        answer = session.client.apps.get_logs(app_id, deployment, component, **kwargs)
    else:
        answer = session.client.apps.get_logs_aggregate(app_id, deployment, **kwargs)
    return dict(answer)


def _history(session: Session, urls: dict[str, Any]) -> None:
    historic = urls.get("historic_urls") or []
    if not historic:
        raise CliError("the API returned no log URL for this selection")
    try:
        with urllib.request.urlopen(historic[0], context=session.target.ssl_context(), timeout=60) as answer:
            for raw in answer:
                sys.stdout.write(raw.decode("utf-8", errors="replace"))
    except urllib.error.URLError as exc:
        raise CliError(f"cannot download the logs: {exc.reason}", EXIT_API) from exc
    sys.stdout.flush()


def _stream(session: Session, live_url: str, skip: int) -> tuple[int, bool]:
    """Print the socket's lines after the first ``skip``; return how many it sent and whether it closed cleanly."""
    from websockets.exceptions import ConnectionClosedOK, WebSocketException
    from websockets.sync.client import connect

    seen = 0
    try:
        ssl_context = session.target.ssl_context() if live_url.startswith("wss:") else None
        with connect(live_url, ssl=ssl_context, open_timeout=30) as socket:
            for frame in socket:
                data = json.loads(frame).get("data", "") if isinstance(frame, str) else frame.decode()
                for line in data.splitlines(keepends=True):
                    seen += 1
                    if seen > skip:
                        sys.stdout.write(line)
                sys.stdout.flush()
    except ConnectionClosedOK:
        return seen, True
    except (WebSocketException, OSError, TimeoutError):
        return seen, False
    return seen, True


def _still_going(session: Session, app_id: str, deployment: str, log_type: LogType) -> bool:
    if log_type in (LogType.run, LogType.run_restarted):
        return True
    phase = session.client.apps.get_deployment(app_id, deployment)["deployment"].get("phase")
    return phase not in ENDED


def _follow(session: Session, app_id: str, deployment: str, component: str | None, log_type: LogType,
            tail: int | None) -> None:
    printed = 0
    drops = 0
    while True:
        urls = _urls(session, app_id, deployment, component, log_type, True, tail)
        if not urls.get("live_url"):  # nothing live any more: what was written is all there is
            if printed == 0:
                _history(session, urls)
            return
        seen, clean = _stream(session, urls["live_url"], printed)
        printed = max(printed, seen)
        if clean or not _still_going(session, app_id, deployment, log_type):
            return
        drops += 1
        if drops > RECONNECTS:
            raise CliError(f"the live log stream kept dropping ({drops} times); giving up")
        err.print(f"log stream dropped; reconnecting ({drops}/{RECONNECTS})", highlight=False)
        time.sleep(min(2.0 ** drops / 4, 5.0))


@connected
def logs(session: Session, app: AppArg,
         component: Annotated[str | None, typer.Argument(help="Component (default: all of them).")] = None,
         log_type: Annotated[LogType, typer.Option("--type", help="build, deploy, run or run_restarted.")]
         = LogType.run,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines as they come.")]
         = False,
         deployment: Annotated[str | None, typer.Option(
             "--deployment", help="Deployment id (default: the active one; for build/deploy, the one in "
             "progress).")] = None,
         tail: Annotated[int | None, typer.Option("--tail", min=0, help="Only the last N lines.")] = None,
         ) -> None:
    """Print an app's logs (stdout, plain text, `<component> <time> <line>`)."""
    app_id = session.app_id(app)
    dep = deployment or _deployment_for(session, app_id, log_type)
    if follow:
        _follow(session, app_id, dep, component, log_type, tail)
    else:
        _history(session, _urls(session, app_id, dep, component, log_type, False, tail))
