"""What every ``shoal apps`` command shares: connection and output options, a client, errors, names.

``@connected`` adds the common options (``--api-url``, ``--token``, ``--ca-cert``, ``--data-dir``,
``--output``) to a command's signature, so each command only declares its own arguments and receives
a ``Session``. It is also the one place where failures become ``error: ...`` lines and exit codes:
pydo (azure-core) exceptions are translated here, and nowhere else.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shoal.cli.output import (
    EXIT_API,
    EXIT_CONNECT,
    CliError,
    Format,
    pick_format,
    report,
)
from shoal.cli.spec_file import SpecFile, problem_lines
from shoal.cli.target import Target, TargetError, resolve_target

ApiUrl = Annotated[str | None, typer.Option("--api-url", envvar="SHOAL_API_URL", show_envvar=True,
                                               help="API endpoint (default: https://127.0.0.1:8443).")]
Token = Annotated[str | None, typer.Option("--token", "-t", envvar=["SHOAL_TOKEN", "DIGITALOCEAN_TOKEN"],
                                              show_envvar=True, help="API token (default: the local "
                                              "server's admin token).")]
CaCert = Annotated[Path | None, typer.Option("--ca-cert", envvar="SHOAL_CA_CERT", show_envvar=True,
                                                help="CA to trust (PEM) (default: the local server's CA, "
                                                "else the system's).")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", envvar="SHOAL_DATA_DIR", show_envvar=True,
                                                 help="Local server's state directory.")]
OutputOpt = Annotated[Format | None, typer.Option("--output", "-o", help="table, json or yaml "
                                                     "(default: table on a terminal, json otherwise).")]

_COMMON = [
    inspect.Parameter("api_url", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ApiUrl),
    inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Token),
    inspect.Parameter("ca_cert", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CaCert),
    inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DataDir),
    inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=OutputOpt),
]
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


@dataclass
class Session:
    target: Target
    format: Format
    client: Any
    spec_file: SpecFile | None = field(default=None)  # set by commands that send one, for error lines

    def app_id(self, name_or_id: str) -> str:
        """An app id from an id or a name, like doctl's Find: list the apps and match id or spec.name."""
        return str(self.find_app(name_or_id)["id"])

    def find_app(self, name_or_id: str) -> dict[str, Any]:
        if _UUID.match(name_or_id):
            try:
                return dict(self.client.apps.get(name_or_id)["app"])
            except (ResourceNotFoundError, CliError) as exc:  # pydo returns or raises a 404
                raise CliError(f"app {name_or_id} not found") from exc
        found = self.app_named(name_or_id)
        if found is None:
            raise CliError(f"app {name_or_id!r} not found (no app has that id or name)")
        return found

    def app_named(self, name: str) -> dict[str, Any] | None:
        for app in self.all_apps():
            if app.get("id") == name or app.get("spec", {}).get("name") == name:
                return app
        return None

    def all_apps(self) -> list[dict[str, Any]]:
        apps: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.client.apps.list(page=page, per_page=200)
            apps.extend(answer.get("apps") or [])
            if not (answer.get("links") or {}).get("pages", {}).get("next"):
                return apps
            page += 1


class _Checked:
    """pydo returns the error body of documented error responses (a 404 from ``apps.get``) instead of
    raising; this proxy raises them as ``CliError`` so no command mistakes an error for a result."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._wrapped, name)
        if not callable(found):
            return _Checked(found)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = found(*args, **kwargs)
            if isinstance(result, dict) and "message" in result and "request_id" in result and len(result) <= 3:
                raise CliError(str(result["message"]))
            return result

        return call


def connected(fn: Callable[..., None]) -> Callable[..., None]:
    """Give ``fn(session, ...)`` the common options and turn every failure into a message and exit code."""
    own = inspect.signature(fn, eval_str=True)
    params = [p for name, p in own.parameters.items() if name != "session"] + _COMMON

    @functools.wraps(fn)
    def run(**kwargs: Any) -> None:
        common = {p.name: kwargs.pop(p.name) for p in _COMMON}
        try:
            target = resolve_target(common["api_url"], common["token"], common["ca_cert"], common["data_dir"])
            session = Session(target=target, format=pick_format(common["output"]), client=_Checked(target.client()))
            try:
                fn(session, **kwargs)
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
                raise translate(exc, session) from exc
        except TargetError as exc:
            report(CliError(str(exc), EXIT_CONNECT))
            raise typer.Exit(EXIT_CONNECT) from None
        except CliError as exc:
            report(exc)
            raise typer.Exit(exc.code) from None

    run.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {**fn.__annotations__, **{p.name: p.annotation for p in _COMMON}}
    run.__annotations__.pop("session", None)
    return run


def translate(exc: HttpResponseError | ServiceRequestError | ServiceResponseError, session: Session) -> CliError:
    """pydo's (azure-core's) exceptions as ``CliError``s with the documented exit codes."""
    url = session.target.url
    if isinstance(exc, ClientAuthenticationError) and exc.status_code == 401:
        return CliError(f"the API at {url} rejected the token ({api_message(exc)}); check --token / "
                        "SHOAL_TOKEN, or create one with `shoal token create`", EXIT_CONNECT)
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        message = api_message(exc)
        problems = problem_lines(message, session.spec_file)
        count = sum(1 for line in problems if not line.startswith("    -->"))
        if count > 1:
            message = f"the app spec has {count} problems:"
        return CliError(message, EXIT_API, problems if count > 1 else problems[1:])
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = ("pass --ca-cert (or SHOAL_CA_CERT) with the server's CA" if "CERTIFICATE" in reason.upper()
            else "is `shoal serve` running there? (or pass --api-url)")
    return CliError(f"cannot reach the API at {url}: {reason}; {hint}", EXIT_CONNECT)


def api_message(exc: HttpResponseError) -> str:
    """The ``message`` of DigitalOcean's error body, else whatever azure-core made of the response."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else {}
    except (ValueError, AttributeError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status_code} {exc.reason or ''}".strip()
