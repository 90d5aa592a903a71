"""``shoal up``'s live picture of a deployment: the progress tree, redrawn in place while it runs.

One Rich ``Live`` region on stderr, fed by polling the deployment; nothing else prints while it is
up (a stray line would tear the region and leave duplicated frames). The tree is a grid, so step
names stay in one column at every depth: status, indented name, what it does, duration.
On a failure the failing step's reason and the last lines of its stage's log follow the tree.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError
from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from shoal.cli.apps_deployments import FAILED_PHASES, _failing_step, _failure_message
from shoal.cli.apps_session import Session
from shoal.cli.output import EXIT_DEPLOY_FAILED, CliError, err

POLL_SECONDS = 0.3
LOG_LINES = 20
ZERO = "0001-01-01"
_ICONS = {"SUCCESS": Text("✓", style="green"), "ERROR": Text("✗", style="bold red"),
          "PENDING": Text("·", style="dim")}


def _time(raw: object) -> datetime | None:
    text = str(raw or "")
    if not text or text.startswith(ZERO):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class Clock:
    """When this view saw each step start and end. The API's times are whole seconds, too coarse for steps
    that take a fraction of one, so observed times win; the API's are the fallback for steps that started
    and ended between two polls (or before ``shoal up`` was watching)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def see(self, path: str, status: str) -> None:
        now = time.monotonic()
        if status == "RUNNING":
            self.started.setdefault(path, now)
        elif status in ("SUCCESS", "ERROR") and path in self.started:
            self.ended.setdefault(path, now)

    def duration(self, path: str, step: dict[str, Any]) -> str:
        if path in self.started:
            return _seconds(self.ended.get(path, time.monotonic()) - self.started[path])
        started = _time(step.get("started_at"))
        if started is None:
            return ""
        ended = _time(step.get("ended_at")) or datetime.now(UTC)
        whole = int(max((ended - started).total_seconds(), 0.0))
        return "<1s" if whole == 0 else _seconds(whole)


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _detail(step: dict[str, Any]) -> str:
    base, component = step.get("message_base"), step.get("component_name")
    if base:
        return f"{base} {component}" if component and component != step.get("name") else str(base)
    return ""


def _rows(table: Table, steps: list[dict[str, Any]], depth: int, clock: Clock, trail: str = "") -> None:
    for step in steps:
        status = str(step.get("status", "PENDING"))
        path = f"{trail}/{step.get('name', '')}"
        clock.see(path, status)
        icon: RenderableType = Spinner("dots", style="cyan") if status == "RUNNING" \
            else _ICONS.get(status, Text("?"))
        name = Text("  " * depth + str(step.get("name", "")),
                    style="bold" if depth == 0 else ("red" if status == "ERROR" else ""))
        table.add_row(icon, name, Text(_detail(step), style="dim"), Text(clock.duration(path, step), style="dim"))
        _rows(table, step.get("steps") or [], depth + 1, clock, path)


def render(dep: dict[str, Any], title: str, clock: Clock) -> RenderableType:
    progress = dep.get("progress") or {}
    table = Table.grid(padding=(0, 1))
    table.add_column(width=1, no_wrap=True)
    table.add_column(no_wrap=True, min_width=24)
    table.add_column(no_wrap=True, min_width=28)
    table.add_column(justify="right", no_wrap=True)
    _rows(table, progress.get("steps") or [], 0, clock)
    head = Text.assemble((title, "bold"), "  ", (str(dep.get("phase", "")), "cyan"),
                         f"  {progress.get('success_steps', 0)}/{progress.get('total_steps', 0)} steps")
    return Group(head, table)


def finished(dep: dict[str, Any]) -> bool:
    progress = dep.get("progress") or {}
    return dep.get("phase") == "ACTIVE" or dep.get("phase") in FAILED_PHASES or progress.get("error_steps", 0) > 0


def follow_progress(session: Session, app_id: str, dep_id: str, title: str) -> dict[str, Any]:
    """Show the tree until the deployment ends; return it when it is ACTIVE, else raise exit 3."""
    dep: dict[str, Any] = session.client.apps.get_deployment(app_id, dep_id)["deployment"]
    clock = Clock()
    with Live(render(dep, title, clock), console=err, refresh_per_second=12, transient=False) as live:
        while not finished(dep):
            time.sleep(POLL_SECONDS)
            dep = session.client.apps.get_deployment(app_id, dep_id)["deployment"]
            live.update(render(dep, title, clock))
    if not err.is_terminal:  # Live ends its last frame with a newline only on a terminal
        err.line()
    if dep.get("phase") == "ACTIVE":
        return dep
    raise CliError(_failure_message(dep, str(dep.get("phase") or "ERROR")), EXIT_DEPLOY_FAILED,
                   _failed_stage_log(session, app_id, dep))


def _failed_stage_log(session: Session, app_id: str, dep: dict[str, Any]) -> list[str]:
    """The last lines of the failing stage's log (build or deploy), of the failing component if known."""
    found = _failing_step((dep.get("progress") or {}).get("steps") or [])
    if found is None:
        return []
    path, step = found
    stage = "BUILD" if path.startswith("build") else "DEPLOY"
    component = step.get("component_name")
    kwargs: dict[str, Any] = {"type": stage, "follow": False, "params": {"tail_lines": LOG_LINES}}
    try:
        if component:
            urls = session.client.apps.get_logs(app_id, dep["id"], component, **kwargs)
        else:
            urls = session.client.apps.get_logs_aggregate(app_id, dep["id"], **kwargs)
        historic = urls.get("historic_urls") or []
        if not historic:
            return []
        with urllib.request.urlopen(historic[0], context=session.target.ssl_context(), timeout=30) as answer:
            text = answer.read().decode("utf-8", errors="replace")
    except (CliError, AzureError, urllib.error.URLError, OSError):  # the reason above matters more
        return []
    lines = text.splitlines()[-LOG_LINES:]
    if not lines:
        return []
    where = f"{stage.lower()} log{f' of {component}' if component else ''}"
    return [f"--- last {len(lines)} lines of the {where} ---", *lines]
