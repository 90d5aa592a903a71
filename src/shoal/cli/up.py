"""``shoal up`` and ``shoal down``: run the app of the git checkout you are in, on a local shoal.

``up`` finds the spec (``.do/app.yaml``, ``.do/deploy.template.yaml`` or the argument), starts a
background ``shoal serve`` if none answers (``up_server``), points the components built from this
repository at a snapshot of the working tree (``up_git``), creates or updates the app by name, shows
the deployment's progress (``up_view``), prints the live URL and follows the run logs.
Everything else is the ``shoal apps`` machinery: target, session, error translation, exit codes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from shoal.cli import up_git, up_server
from shoal.cli.apps_deployments import started_deployment
from shoal.cli.apps_logs import LogType, _follow
from shoal.cli.apps_session import Session, _Checked, translate
from shoal.cli.output import (
    EXIT_API,
    EXIT_CONNECT,
    EXIT_USAGE,
    CliError,
    Format,
    err,
    report,
)
from shoal.cli.spec_file import SpecFile, problem_lines, read_spec_file
from shoal.cli.target import TargetError, resolve_target
from shoal.cli.up_view import follow_progress
from shoal.core.errors import ShoalError
from shoal.core.settings import (
    DEFAULT_API_LISTEN,
    DEFAULT_INGRESS_LISTEN,
    default_data_dir,
    parse_listen,
)


class SourceMode(str, Enum):
    local = "local"
    remote = "remote"


DataDir = Annotated[Path | None, typer.Option("--data-dir", envvar="SHOAL_DATA_DIR", show_envvar=True,
                                                 help="Local server's state directory (default: "
                                                      "$XDG_DATA_HOME/shoal).")]
ApiListen = Annotated[str, typer.Option("--api-listen", help="HOST:PORT of the local server's API.")]
IngressListen = Annotated[str, typer.Option("--ingress-listen", help="HOST:PORT of the local server's ingress "
                                                                     "(used when it has to be started).")]


@contextmanager
def _exits(holder: list[Session]) -> Iterator[None]:
    """Every failure as ``error: ...`` and its documented exit code (as ``shoal apps`` does)."""
    try:
        yield
    except TargetError as exc:
        report(CliError(str(exc), EXIT_CONNECT))
        raise typer.Exit(EXIT_CONNECT) from None
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        error = translate(exc, holder[0]) if holder else CliError(str(exc), EXIT_CONNECT)
        report(error)
        raise typer.Exit(error.code) from None
    except CliError as exc:
        report(exc)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        err.print("\ninterrupted; a deployment already started goes on (see `shoal apps deployments list`)",
                  highlight=False)
        raise typer.Exit(130) from None


def _api_url(api_listen: str) -> tuple[str, str, int]:
    try:
        host, port = parse_listen(api_listen)
    except ShoalError as exc:
        raise CliError(exc.message, EXIT_USAGE) from exc
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"https://{shown}:{port}", host.strip("[]"), port


def _session(api_listen: str, data_dir: Path) -> Session:
    target = resolve_target(_api_url(api_listen)[0], None, None, data_dir)
    return Session(target=target, format=Format.table, client=_Checked(target.client()))


def ensure_server(data_dir: Path, api_listen: str, ingress_listen: str) -> None:
    url, host, port = _api_url(api_listen)
    if up_server.api_answers(url, data_dir):
        return
    if up_server.port_open(host, port):
        raise CliError(f"something listens on {api_listen} but does not accept the admin token of {data_dir}; "
                       "pass the --data-dir it was started with, or another --api-listen", EXIT_CONNECT)
    pid = up_server.start(data_dir, api_listen, ingress_listen)
    err.print(f"started shoal serve in the background (pid {pid}; log {up_server.log_file(data_dir)})",
              highlight=False)
    up_server.wait_until_ready(url, data_dir, pid)


def _local_spec(spec_file: SpecFile, root: Path | None, data_dir: Path) -> dict[str, Any]:
    """The spec with this checkout's components built from a snapshot of the working tree."""
    if root is None:
        err.print("not in a git checkout: the spec's sources are deployed as they are", highlight=False)
        return spec_file.spec
    name = str(spec_file.spec.get("name", "app"))
    bare = up_git.snapshot_repo(root, name)
    mapping = up_git.map_to_snapshot(spec_file.spec, up_git.remote_urls(root), bare)
    if not mapping.local:
        err.print("no component builds from this checkout: the spec's sources are deployed as they are",
                  highlight=False)
        return spec_file.spec
    commit = up_git.snapshot(root, bare)
    err.print(f"snapshot {commit[:7]} of {root} (uncommitted changes included) → {', '.join(mapping.local)}",
              highlight=False)
    return mapping.spec


def _propose(session: Session, spec: dict[str, Any]) -> None:
    """Validate on the server first, so spec problems come with the spec file's line numbers."""
    try:
        session.client.apps.validate_app_spec({"spec": spec})
    except CliError as exc:  # pydo handed back the error body instead of raising
        lines = problem_lines(exc.message, session.spec_file)
        count = sum(1 for line in lines if not line.startswith("    -->"))
        if count > 1:
            raise CliError(f"the app spec has {count} problems:", EXIT_API, lines) from None
        raise CliError(exc.message, EXIT_API, lines[1:]) from None


def _deploy(session: Session, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    name = str(spec.get("name", ""))
    existing = session.app_named(name)
    if existing is not None:
        app = session.client.apps.update(existing["id"], {"spec": spec, "update_all_source_versions": True})["app"]
    else:
        app = session.client.apps.create({"spec": spec})["app"]
    dep_id = started_deployment(session, app)
    if dep_id is None:
        raise CliError(f"the server started no deployment of {name}")
    return app, dep_id


def up(spec: Annotated[str | None, typer.Argument(help="App spec file (default: .do/app.yaml or "
                                                       ".do/deploy.template.yaml of the checkout).")] = None,
       source: Annotated[SourceMode, typer.Option("--source", help="local: build this repository's components "
                                                  "from the working tree (uncommitted changes included); remote: "
                                                  "keep the spec's sources.")] = SourceMode.local,
       detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once the app is live instead of "
                                                                   "following its logs.")] = False,
       data_dir: DataDir = None,
       api_listen: ApiListen = DEFAULT_API_LISTEN,
       ingress_listen: IngressListen = DEFAULT_INGRESS_LISTEN) -> None:
    """Deploy this checkout's app on a local shoal (started if needed), show progress, then follow its logs."""
    holder: list[Session] = []
    data = data_dir or default_data_dir()
    with _exits(holder):
        root = up_git.checkout_root(Path.cwd())
        spec_file = read_spec_file(spec or str(up_git.find_spec(root or Path.cwd())))
        ensure_server(data, api_listen, ingress_listen)
        holder.append(_session(api_listen, data))
        session = holder[0]
        session.spec_file = spec_file
        body = _local_spec(spec_file, root, data) if source is SourceMode.local else spec_file.spec
        _propose(session, body)
        app, dep_id = _deploy(session, body)
        follow_progress(session, str(app["id"]), dep_id, f"deploying {body.get('name')}")
        live = session.client.apps.get(app["id"])["app"]
        url = live.get("live_url") or live.get("default_ingress") or ""
        err.print(f"[green]✓[/green] {body.get('name')} is live at", highlight=False, end=" ")
        print(url or "(no URL: the app has no HTTP component)", flush=True)
        if detach:
            return
        err.print("following the run logs (Ctrl-C stops following; the app keeps running, `shoal down` "
                  "deletes it)", highlight=False)
        try:
            _follow(session, str(app["id"]), dep_id, None, LogType.run, None)
        except KeyboardInterrupt:
            err.print("\nstopped following the logs", highlight=False)


def _checkout_app_name() -> str:
    root = up_git.checkout_root(Path.cwd())
    name = read_spec_file(str(up_git.find_spec(root or Path.cwd()))).spec.get("name")
    if not name:
        raise CliError("the checkout's spec names no app; pass APP", EXIT_USAGE)
    return str(name)


def down(app: Annotated[str | None, typer.Argument(help="App id or name (default: the app of this checkout's "
                                                        "spec).")] = None,
         all_: Annotated[bool, typer.Option("--all", help="Stop the background server `shoal up` started "
                                                          "(apps are kept and run again on the next start).")]
         = False,
         data_dir: DataDir = None,
         api_listen: ApiListen = DEFAULT_API_LISTEN) -> None:
    """Delete the app of this checkout (or APP); with --all, stop the background server instead."""
    holder: list[Session] = []
    data = data_dir or default_data_dir()
    with _exits(holder):
        if all_:
            if app is not None:
                raise CliError("--all stops the server; it takes no APP", EXIT_USAGE)
            err.print(up_server.stop(data), highlight=False)
            return
        name = app or _checkout_app_name()
        holder.append(_session(api_listen, data))
        app_id = holder[0].app_id(name)
        holder[0].client.apps.delete(app_id)
        root = up_git.checkout_root(Path.cwd())
        if root is not None:
            shutil.rmtree(up_git.snapshot_repo(root, name), ignore_errors=True)
        shutil.rmtree(data / "up" / name, ignore_errors=True)  # where shoal kept snapshots before
        err.print(f"deleted app {name} ({app_id})", highlight=False)
