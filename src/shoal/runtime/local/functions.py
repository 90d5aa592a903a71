"""Functions components in the local runtime: the gateway process that serves one.

The build is the functions planner's (``shoal.runtime.functions.build``), run by the builder like any
recipe. Here: ``gateway_env`` reads the built project again with the variables' real values and
describes the gateway (``shoal.runtime.functions.gateway``) that the supervisor keeps running on the
component's port — its whole environment is its configuration plus what a tool needs from the host.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from shoal.domain.deployments import StepFailed
from shoal.domain.functions.model import ProjectInvalid
from shoal.domain.plan import Probe, RunUnit
from shoal.runtime.functions.build import load_project
from shoal.runtime.functions.gateway import CONFIG_VARIABLE, GatewayConfig

_GATEWAY_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


def base_python() -> str:
    """The interpreter shoal runs on, outside shoal's own virtualenv: what actions run with."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def gateway_command() -> str:
    return f"exec {shlex.quote(sys.executable)} -m shoal.runtime.functions.gateway"


def gateway_env(root: Path, unit: RunUnit, env: Mapping[str, str], port: int, *, default_cors: bool,
                namespace: str, api_host: str, host_env: Mapping[str, str]) -> dict[str, str]:
    """The gateway's whole environment: its configuration, and only what a tool needs from the host."""
    try:
        project = load_project(root, env)
    except ProjectInvalid as invalid:
        raise StepFailed("ContainerCommandNotExecutable", f"{unit.name}: {invalid.message}") from invalid
    config = GatewayConfig(port=port, root=root, actions=project.actions, namespace=namespace, api_host=api_host,
                           default_cors=default_cors, python=base_python(),
                           node=shutil.which("node", path=host_env.get("PATH")) or "node")
    return {**{k: host_env[k] for k in _GATEWAY_ENV if k in host_env}, CONFIG_VARIABLE: config.to_json()}


def gateway_probe(port: int) -> Probe:
    """A TCP check: the gateway answers within a second or two; a loaded machine gets two minutes."""
    return Probe(port=port, period_seconds=0.5, timeout_seconds=1.0, failure_threshold=240)
