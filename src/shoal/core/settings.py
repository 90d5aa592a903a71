"""Settings: one typed object built at start and passed down. The only reader of ``os.environ``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shoal.core.errors import BadRequest

DEFAULT_API_LISTEN = "127.0.0.1:8443"
DEFAULT_INGRESS_LISTEN = "127.0.0.1:8000"
DEFAULT_APPS_DOMAIN = "localhost"
# Only these reach app processes and builds: an app must not see shoal's own secrets.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PYENV_ROOT", "SSL_CERT_FILE")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shoal"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(f"listen address {value!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@dataclass(frozen=True)
class RateLimits:
    """Requests per token; DigitalOcean's defaults are 5,000 an hour and 250 a minute."""

    per_hour: int = 5000
    per_minute: int = 250


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    max_body_bytes: int = 4 * 1024 * 1024
    console_idle_seconds: float = 900.0  # doctl apps console sessions with no keystroke or output end


@dataclass(frozen=True)
class IngressSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    apps_domain: str = DEFAULT_APPS_DOMAIN
    tls_host: str | None = None  # --ingress-tls-listen: HTTPS for apps and their custom domains
    tls_port: int | None = None
    tls_certs: Path | None = None  # --ingress-tls-certs: the operator's certificates, preferred by name


@dataclass(frozen=True)
class ContainerSettings:
    """The container runtime's engine: ``engine_url`` ``None`` = shoal's own podman service when podman is
    installed, else ``DOCKER_HOST``, else Docker's socket; ``registry_mirrors`` maps registry hosts."""

    engine_url: str | None = None
    registry_mirrors: tuple[tuple[str, str], ...] = ()
    stack_image: str = "localhost/shoal/stack:bookworm"


@dataclass(frozen=True)
class KubernetesSettings:
    """``--runtime kubernetes``: which cluster (a kubeconfig and context; neither = in-cluster config), the
    registry the cluster pulls shoal's images from, and the IngressClass of an optional in-cluster Ingress."""

    kubeconfig: Path | None = None
    context: str | None = None
    image_registry: str | None = None
    ingress_class: str | None = None


@dataclass(frozen=True)
class RuntimeSettings:
    backend: str = "local"
    simulate_step_seconds: float = 0.0
    container: ContainerSettings = field(default_factory=ContainerSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)


@dataclass(frozen=True)
class ObservabilitySettings:
    """Where logs and alerts go out: ``--smtp-url``, ``--log-forward-ca``, ``--logtail-endpoint``."""

    smtp_url: str | None = None  # smtp://host:port or smtps://user:password@host:port (?from=sender)
    log_forward_ca: Path | None = None  # extra CAs trusted for TLS destinations (and the mail server)
    logtail_endpoint: str = "https://in.logs.betterstack.com"
    log_forward_buffer: int = 10_000  # lines kept per destination while it is failing
    metrics_interval: float = 10.0  # seconds between samples of every instance (and autoscaling rounds)
    window_scale: float = 1.0  # alert windows, autoscaling periods and inactivity sleep, scaled (for trying out)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    change_feed: str = "notify"  # PostgreSQL: hear other servers' writes by LISTEN/NOTIFY, or "poll"
    api: ApiSettings = field(default_factory=ApiSettings)
    ingress: IngressSettings = field(default_factory=IngressSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    bootstrap_token: str | None = None
    host_env: dict[str, str] = field(default_factory=dict)  # what app processes inherit (PATH, HOME, LANG...)
    secret_key: bytes | None = None  # SHOAL_SECRET_KEY (64 hex digits); else DATA_DIR/secrets.key

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def shared_database(self) -> bool:
        """PostgreSQL may be shared by several servers; SQLite (the default) belongs to this one."""
        return (self.database_url or "").startswith(("postgresql", "postgres:"))

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'shoal.db'}"

    @classmethod
    def from_env(cls, data_dir: Path | None = None, **overrides: object) -> Settings:
        """Settings from explicit values, falling back to ``SHOAL_*`` environment variables."""
        env = os.environ
        resolved_dir = data_dir or (Path(env["SHOAL_DATA_DIR"]) if env.get("SHOAL_DATA_DIR") else default_data_dir())
        values: dict[str, object] = {
            "data_dir": resolved_dir.expanduser().resolve(),
            "database_url": env.get("SHOAL_DATABASE_URL") or None,
            "bootstrap_token": env.get("SHOAL_BOOTSTRAP_TOKEN") or None,
            "host_env": {k: env[k] for k in INHERITED_ENV if k in env},
            "secret_key": _secret_key(env.get("SHOAL_SECRET_KEY")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _secret_key(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        key = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise BadRequest("SHOAL_SECRET_KEY must be 64 hex digits (32 bytes)") from exc
    if len(key) != 32:
        raise BadRequest("SHOAL_SECRET_KEY must be 64 hex digits (32 bytes)")
    return key
