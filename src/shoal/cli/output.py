"""How ``shoal apps`` prints: results as a Rich table, JSON or YAML, and errors as ``error: ...`` lines.

Results go to stdout, progress and errors to stderr, so ``-o json`` output can always be piped.
Tables are the default on a terminal, JSON otherwise (a script gets something it can parse).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

# The documented exit codes (see ``shoal apps --help``).
EXIT_OK = 0
EXIT_API = 1  # the API refused the request, or the spec is invalid
EXIT_USAGE = 2  # bad flags or arguments (Click's own code)
EXIT_DEPLOY_FAILED = 3  # --wait saw the deployment fail or get canceled
EXIT_CONNECT = 4  # the server is unreachable, or the token/CA is missing or rejected

EXIT_CODES_HELP = ("Exit codes: 0 ok; 1 API or validation error; 2 usage error; "
                   "3 deployment failed (--wait); 4 cannot connect or authenticate.")

# Piped tables are not cut to 80 columns: ids must survive a copy and paste or a grep.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 1000)
err = Console(stderr=True, soft_wrap=True)


class Format(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


class CliError(Exception):
    """Ends a command with ``error: message`` (plus detail lines) and the given exit code."""

    def __init__(self, message: str, code: int = EXIT_API, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = list(details)


def pick_format(chosen: Format | None) -> Format:
    if chosen is not None:
        return chosen
    return Format.table if sys.stdout.isatty() else Format.json


def report(error: CliError) -> None:
    err.print(f"[red]error:[/red] {error.message}", highlight=False, markup=True)
    for line in error.details:
        err.print(line, highlight=False, markup=False)


def emit(data: Any, fmt: Format, table: Callable[[Any], Table | str] | None = None) -> None:
    """Print ``data`` in ``fmt``; ``table`` renders it for people (a Table, or preformatted text)."""
    if fmt is Format.json:
        print(json.dumps(data, indent=2))
    elif fmt is Format.yaml or table is None:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        rendered = table(data)
        if isinstance(rendered, str):
            print(rendered, end="" if rendered.endswith("\n") else "\n")
        else:
            out.print(rendered)


def _table(columns: Iterable[str], rows: Iterable[Sequence[object]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


def progress_text(dep: dict[str, Any]) -> str:
    progress = dep.get("progress") or {}
    return f"{progress.get('success_steps', 0)}/{progress.get('total_steps', 0)}"


def _dep_id(app: dict[str, Any], key: str) -> str:
    return str((app.get(key) or {}).get("id", ""))


def apps_table(apps: list[dict[str, Any]]) -> Table:
    return _table(["ID", "Spec Name", "Default Ingress", "Active Deployment ID", "In Progress Deployment ID",
                   "Created At", "Updated At"],
                  ([a.get("id"), a.get("spec", {}).get("name"), a.get("default_ingress"),
                    _dep_id(a, "active_deployment"), _dep_id(a, "in_progress_deployment") or _dep_id(
                        a, "pending_deployment"), a.get("created_at"), a.get("updated_at")] for a in apps))


def deployments_table(deps: list[dict[str, Any]]) -> Table:
    return _table(["ID", "Cause", "Progress", "Phase", "Created At", "Updated At"],
                  ([d.get("id"), d.get("cause"), progress_text(d), d.get("phase"), d.get("created_at"),
                    d.get("updated_at")] for d in deps))


def regions_table(regions: list[dict[str, Any]]) -> Table:
    return _table(["Region", "Label", "Continent", "Data Centers", "Is Disabled?", "Reason (if disabled)",
                   "Is Default?"],
                  ([r.get("slug"), r.get("label"), r.get("continent"), ",".join(r.get("data_centers") or []),
                    r.get("disabled", False), r.get("reason", ""), r.get("default", False)] for r in regions))


def instance_sizes_table(sizes: list[dict[str, Any]]) -> Table:
    return _table(["Name", "Slug", "CPUs", "Memory", "$/month", "Tier", "Upgrade/Downgrade Path"],
                  ([s.get("name"), s.get("slug"), f"{s.get('cpus', '')} {str(s.get('cpu_type', '')).lower()}",
                    _memory(s.get("memory_bytes")), s.get("usd_per_month"), s.get("tier_slug"),
                    " -> ".join(x for x in (s.get("tier_downgrade_to"), s.get("slug"), s.get("tier_upgrade_to"))
                                if x)] for s in sizes))


def _memory(raw: object) -> str:
    try:
        mib = int(str(raw)) // (1024 * 1024)
    except ValueError:
        return str(raw or "")
    return f"{mib // 1024}GB" if mib >= 1024 and mib % 1024 == 0 else f"{mib}MB"


def alerts_table(alerts: list[dict[str, Any]]) -> Table:
    return _table(["ID", "Spec Rule", "Emails", "Slack Channels", "Phase"],
                  ([a.get("id"), (a.get("spec") or {}).get("rule"), ",".join(a.get("emails") or []),
                    ",".join(str(s.get("channel", "")) for s in a.get("slack_webhooks") or []), a.get("phase")]
                   for a in alerts))


def rollback_check_table(result: dict[str, Any]) -> str:
    lines = [f"valid: {'yes' if result.get('valid') else 'no'}"]
    error = result.get("error")
    if error:
        lines.append(f"error: {error.get('code', '')}: {error.get('message', '')}")
    for warning in result.get("warnings") or []:
        lines.append(f"warning: {warning.get('code', '')}: {warning.get('message', '')}")
    return "\n".join(lines) + "\n"


def spec_yaml(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
