"""``shoal spec ...``: offline work on app specs, no server needed.

``validate`` runs the same ``shoal.spec.check`` the API runs, so a spec that passes here passes
propose too, and prints either the normalised spec or every problem with its field path.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from shoal.core.errors import BadRequest
from shoal.spec import SpecInvalid, check, load_text

spec_app = typer.Typer(help="Work with app specs offline: validate and normalise them.", no_args_is_help=True)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


@spec_app.callback()
def _spec() -> None:
    """Work with app specs offline (no server needed)."""


@spec_app.command()
def validate(
    file: Annotated[str, typer.Argument(help="Spec file (YAML or JSON, deploy-template form too); - reads stdin.")],
    output: Annotated[OutputFormat, typer.Option("--format", "-o", help="text (YAML) or json.")] = OutputFormat.text,
) -> None:
    """Validate an app spec; print the normalised spec, or every problem with its path (exit 1)."""
    try:
        text = _read(file)
        spec = check(load_text(text))
    except SpecInvalid as error:
        _report([{"path": p.path, "message": p.message} for p in error.problems], output)
        raise typer.Exit(1) from None
    except BadRequest as error:
        _report([{"path": "", "message": error.message}], output)
        raise typer.Exit(1) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps(spec, indent=2))
    else:
        typer.echo(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), nl=False)


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadRequest(f"cannot read {file}: {error}") from error


def _report(problems: list[dict[str, Any]], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        typer.echo(json.dumps({"problems": problems}, indent=2))
        return
    for problem in problems:
        where = f"{problem['path']}: " if problem["path"] else ""
        typer.echo(f"{where}{problem['message']}", err=True)
    typer.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", err=True)
