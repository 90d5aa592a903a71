"""Functions components in the local runtime: the gateway process that serves one.

The build is the functions planner's (``shoal.runtime.functions.build``), run by the builder like any
recipe. Here: ``gateway_env`` reads the built project again with the variables' real values and
describes the gateway (``shoal.runtime.functions.gateway``) that the supervisor keeps running on the
component's port — its whole environment is its configuration plus what a tool needs from the host;
``read_activations`` asks a running gateway for its activation totals (the FUNCTIONS_* alert rules).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from shoal.domain.component_metrics import Activations, activations_from_record
from shoal.domain.deployments import StepFailed
from shoal.domain.functions.model import ProjectInvalid
from shoal.domain.plan import Probe, RunUnit
from shoal.runtime.functions.build import load_project
from shoal.runtime.functions.gateway import CONFIG_VARIABLE, STATS_HEADER, STATS_PATH, GatewayConfig

_GATEWAY_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


def base_python() -> str:
    """The interpreter shoal runs on, outside shoal's own virtualenv: what actions run with."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def gateway_command() -> str:
    return f"exec {shlex.quote(sys.executable)} -m shoal.runtime.functions.gateway"


def gateway_env(root: Path, unit: RunUnit, env: Mapping[str, str], port: int, *, default_cors: bool,
                namespace: str, api_host: str, host_env: Mapping[str, str], stats_token: str = "") -> dict[str, str]:
    """The gateway's whole environment: its configuration, and only what a tool needs from the host."""
    try:
        project = load_project(root, env)
    except ProjectInvalid as invalid:
        raise StepFailed("ContainerCommandNotExecutable", f"{unit.name}: {invalid.message}") from invalid
    config = GatewayConfig(port=port, root=root, actions=project.actions, namespace=namespace, api_host=api_host,
                           default_cors=default_cors, python=base_python(),
                           node=shutil.which("node", path=host_env.get("PATH")) or "node", stats_token=stats_token)
    return {**{k: host_env[k] for k in _GATEWAY_ENV if k in host_env}, CONFIG_VARIABLE: config.to_json()}


def gateway_probe(port: int) -> Probe:
    """A TCP check: the gateway answers within a second or two; a loaded machine gets two minutes."""
    return Probe(port=port, period_seconds=0.5, timeout_seconds=1.0, failure_threshold=240)


def read_activations(port: int, token: str, timeout: float = 2.0) -> Activations | None:
    """The gateway's activation totals, or None when it does not answer (starting, stopping)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{STATS_PATH}", headers={STATS_HEADER: token})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - a loopback http URL
            data = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return activations_from_record(data) if isinstance(data, dict) else None
