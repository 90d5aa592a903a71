"""``shoal``: serve the platform, bring a checkout up, drive apps like doctl, manage tokens and clusters."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from shoal.cli.apps import apps_app
from shoal.cli.cluster import cluster_app
from shoal.cli.output import EXIT_CODES_HELP
from shoal.cli.spec import spec_app
from shoal.cli.stack import stack_app
from shoal.cli.up import down, up
from shoal.core.errors import ShoalError
from shoal.core.settings import (DEFAULT_API_LISTEN, DEFAULT_APPS_DOMAIN, DEFAULT_INGRESS_LISTEN, ApiSettings,
                                 ContainerSettings, IngressSettings, KubernetesSettings, ObservabilitySettings,
                                 RateLimits, RuntimeSettings, Settings, parse_listen)

app = typer.Typer(help="shoal: a self-hosted application platform that speaks the DigitalOcean Apps API.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
token_app = typer.Typer(help="Manage API tokens (run on the machine that holds the data dir).", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="State directory [default: $XDG_DATA_HOME/shoal].",
                                                 envvar="SHOAL_DATA_DIR")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", envvar="SHOAL_DATABASE_URL",
                                                    help="PostgreSQL URL for state instead of the SQLite file.")]

app.add_typer(spec_app, name="spec")
app.add_typer(apps_app, name="apps")
app.add_typer(cluster_app, name="cluster")
app.add_typer(stack_app, name="stack")
app.command("up", epilog=EXIT_CODES_HELP)(up)
app.command("down")(down)


def _fail(exc: ShoalError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.message}")
    return typer.Exit(2)


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    api_listen: Annotated[str, typer.Option(help="HOST:PORT for the HTTPS API.")] = DEFAULT_API_LISTEN,
    ingress_listen: Annotated[str, typer.Option(help="HOST:PORT for the apps' ingress.")] = DEFAULT_INGRESS_LISTEN,
    ingress_tls_listen: Annotated[Optional[str], typer.Option(
        help="HOST:PORT for an HTTPS ingress (certificates from the local CA, per domain).")] = None,
    ingress_tls_certs: Annotated[Optional[Path], typer.Option(
        help="A directory of your own certificates for the HTTPS ingress (NAME.pem + NAME-key.pem, NAME.crt + "
             "NAME.key, or certbot's live/ folders); a host they cover gets yours instead of the local CA's.",
        exists=True, file_okay=False, dir_okay=True, readable=True)] = None,
    apps_domain: Annotated[str, typer.Option(help="Domain under which apps get their default hostnames.")]
    = DEFAULT_APPS_DOMAIN,
    tls_cert: Annotated[Optional[Path], typer.Option(help="Your own certificate for the API (PEM).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="The key of --tls-cert (PEM).")] = None,
    rate_limit_per_hour: Annotated[int, typer.Option(min=1, help="Requests per token per hour.")] = 5000,
    rate_limit_per_minute: Annotated[int, typer.Option(min=1, help="Requests per token per minute.")] = 250,
    runtime: Annotated[str, typer.Option(help="Runtime backend: local (builds and runs apps on this machine), "
                                               "kubernetes (on the cluster of --kubeconfig) or "
                                               "simulate (walks every step, builds nothing).")] = "local",
    simulate_step_seconds: Annotated[float, typer.Option(min=0, help="Delay of each simulated step.")] = 0.0,
    smtp_url: Annotated[Optional[str], typer.Option(
        envvar="SHOAL_SMTP_URL", help="Mail server for email alerts: smtp://host:port (STARTTLS when offered) or "
                                      "smtps://user:password@host:port; ?from=ADDRESS sets the sender. Without it, "
                                      "email alerts are recorded as undeliverable.")] = None,
    log_forward_ca: Annotated[Optional[Path], typer.Option(
        help="A PEM file of extra CAs trusted for TLS log destinations and the mail server.",
        exists=True, file_okay=True, dir_okay=False, readable=True)] = None,
    logtail_endpoint: Annotated[str, typer.Option(
        help="Where Logtail (Better Stack) destinations send: the spec gives only a token.")]
    = ObservabilitySettings.logtail_endpoint,
    log_forward_buffer: Annotated[int, typer.Option(
        min=1, help="Log lines kept per destination while it is unreachable; older ones are dropped "
                    "(and counted in the deployment log).")] = ObservabilitySettings.log_forward_buffer,
    metrics_interval: Annotated[float, typer.Option(
        min=0.5, help="Seconds between samples of every instance's CPU, memory and restarts (also how often "
                      "metric alerts and autoscaling are judged).")] = ObservabilitySettings.metrics_interval,
    window_scale: Annotated[float, typer.Option(
        min=0.001, help="Multiplies every time window of metric alerts (FIVE_MINUTES ...), of autoscaling and "
                        "of inactivity_sleep; e.g. 0.02 to try rules out in seconds. Default 1: as written.")]
    = ObservabilitySettings.window_scale,
    container_engine_url: Annotated[Optional[str], typer.Option(
        envvar="SHOAL_CONTAINER_ENGINE_URL",
        help="--runtime container: the engine's API [default: shoal's own podman service when podman is "
             "installed, else DOCKER_HOST, else unix:///var/run/docker.sock].")] = None,
    registry_mirror: Annotated[Optional[list[str]], typer.Option(
        help="FROM=TO: pull images of registry host FROM from TO instead (repeatable; e.g. "
             "docker.io=127.0.0.1:5000).")] = None,
    stack_image: Annotated[str, typer.Option(help="--runtime container: the image buildpack builds and their "
                                                  "apps run in (shoal stack build makes the default).")]
    = ContainerSettings().stack_image,
    kubeconfig: Annotated[Optional[Path], typer.Option(
        help="--runtime kubernetes: the cluster's kubeconfig [default: in-cluster config].", exists=True,
        dir_okay=False)] = None,
    kube_context: Annotated[Optional[str], typer.Option(help="--runtime kubernetes: a context of --kubeconfig.")]
    = None,
    image_registry: Annotated[Optional[str], typer.Option(
        help="--runtime kubernetes: HOST[:PORT] of a registry the cluster pulls shoal's images from.")] = None,
    kube_ingress_class: Annotated[Optional[str], typer.Option(
        help="--runtime kubernetes: also render an Ingress per app for this IngressClass.")] = None,
    change_feed: Annotated[str, typer.Option(
        help="With --database-url postgresql://: how this server hears other servers' writes: notify "
             "(LISTEN/NOTIFY, polling only while it cannot listen) or poll (every second; for a pooler such as "
             "PgBouncer in transaction mode, which cannot carry LISTEN).")] = "notify",
    console_idle_timeout: Annotated[float, typer.Option(
        min=1, help="Seconds without a keystroke or output after which a console session (doctl apps "
                    "console) is closed.")] = 900.0,
    allow_local_sources: Annotated[Optional[list[Path]], typer.Option(
        "--allow-local-sources", help="A directory any account may build from by path or file:// URL (repeat for "
        "more); without it only the admin account may, and never from inside the data dir.")] = None,
    apps_dir: Annotated[Optional[Path], typer.Option(
        envvar="SHOAL_APPS_DIR", help="Where apps' builds live when shoal runs as root and runs each app as its own user; every directory "
             "above it must be searchable by other users [default: /var/lib/shoal-apps/<hash of the data dir>].")]
    = None,
) -> None:
    """Start the platform: the HTTPS API and the ingress, in one process."""
    from shoal.bootstrap import serve as run

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    if ingress_tls_certs is not None and ingress_tls_listen is None:
        raise typer.BadParameter("--ingress-tls-certs needs --ingress-tls-listen (the HTTPS ingress serves them)")
    if change_feed not in ("notify", "poll"):
        raise typer.BadParameter("--change-feed is notify or poll")
    try:
        api_host, api_port = parse_listen(api_listen)
        ingress_host, ingress_port = parse_listen(ingress_listen)
        tls = parse_listen(ingress_tls_listen) if ingress_tls_listen else None
        settings = Settings.from_env(
            data_dir=data_dir, database_url=database_url, change_feed=change_feed,
            api=ApiSettings(host=api_host, port=api_port, tls_cert=tls_cert, tls_key=tls_key,
                            rate_limits=RateLimits(per_hour=rate_limit_per_hour, per_minute=rate_limit_per_minute),
                            console_idle_seconds=console_idle_timeout),
            ingress=IngressSettings(host=ingress_host, port=ingress_port, apps_domain=apps_domain,
                                    tls_host=tls[0] if tls else None, tls_port=tls[1] if tls else None,
                                    tls_certs=ingress_tls_certs),
            runtime=RuntimeSettings(backend=runtime, simulate_step_seconds=simulate_step_seconds,
                                    container=ContainerSettings(engine_url=container_engine_url,
                                                                registry_mirrors=_mirrors(registry_mirror or []),
                                                                stack_image=stack_image),
                                    local_sources=tuple(p.expanduser().resolve() for p in allow_local_sources or ()),
                                    apps_dir=apps_dir.expanduser().resolve() if apps_dir else None,
                                    kubernetes=KubernetesSettings(kubeconfig=kubeconfig, context=kube_context,
                                                                  image_registry=image_registry,
                                                                  ingress_class=kube_ingress_class)),
            observability=ObservabilitySettings(smtp_url=smtp_url, log_forward_ca=log_forward_ca,
                                                logtail_endpoint=logtail_endpoint,
                                                log_forward_buffer=log_forward_buffer,
                                                metrics_interval=metrics_interval, window_scale=window_scale),
        )
        run(settings, announce=lambda line: console.print(line, highlight=False, soft_wrap=True))
    except ShoalError as exc:
        raise _fail(exc) from exc


def _mirrors(values: list[str]) -> tuple[tuple[str, str], ...]:
    from shoal.runtime.container.registries import parse_mirrors

    try:
        return tuple(parse_mirrors(values).items())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _platform(data_dir: Path | None, database_url: str | None):  # type: ignore[no-untyped-def]
    from shoal.bootstrap import build_platform

    return build_platform(Settings.from_env(data_dir=data_dir, database_url=database_url))


_DURATION_RE = re.compile(r"^(\d+)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text: str) -> timedelta:
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 90m, 12h, 30d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@token_app.command("create")
def token_create(
    scope: Annotated[Optional[list[str]], typer.Option("--scope", help="app:read, app:create, app:update, "
                     "app:delete, read, or * (repeatable; default: full access).")] = None,
    account: Annotated[str, typer.Option(help="Account the token belongs to (created if new).")] = "admin",
    name: Annotated[Optional[str], typer.Option(help="A label for the token.")] = None,
    expires_in: Annotated[Optional[str], typer.Option(help="Lifetime, e.g. 3600, 90m, 12h, 30d.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a token and print it (it is shown only this once)."""
    platform = _platform(data_dir, database_url)
    try:
        issued = platform.accounts.create_token(account, scope or [], name,
                                                _duration(expires_in) if expires_in else None)
    except ShoalError as exc:
        raise _fail(exc) from exc
    finally:
        platform.close()
    print(issued.value)
    err.print(f"token {issued.token.id} for account {issued.account.name} ({issued.account.id}), "
              f"scopes: {' '.join(sorted(issued.token.scopes))}", highlight=False)


@token_app.command("list")
def token_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List tokens (ids, accounts, scopes, state); token values are never stored."""
    platform = _platform(data_dir, database_url)
    try:
        rows = platform.accounts.list_tokens()
    finally:
        platform.close()
    table = Table("id", "name", "account", "scopes", "created", "expires", "state")
    for token, acct in rows:
        state = "revoked" if token.revoked_at else "active"
        table.add_row(token.id, token.name, acct.name, " ".join(sorted(token.scopes)),
                      token.created_at.strftime("%Y-%m-%d %H:%M"),
                      token.expires_at.strftime("%Y-%m-%d %H:%M") if token.expires_at else "never", state)
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Token id or a unique prefix of it.")],
                 data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a token: requests with it get 401 from then on."""
    platform = _platform(data_dir, database_url)
    try:
        token = platform.accounts.revoke_token(token_id)
    except ShoalError as exc:
        raise _fail(exc) from exc
    finally:
        platform.close()
    console.print(f"revoked {token.id} ({token.name})", highlight=False)


def main() -> None:
    app()
