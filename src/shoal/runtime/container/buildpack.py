"""Buildpack builds inside the stack image: the local runtime's build steps, written as a Dockerfile.

Role: pure functions from what the local runtime's detection found (``runtime.local.detect``: the
stack, the run command) and the unit's build plan to the text of a Dockerfile ``FROM`` the stack
image. The engine then runs those steps in a build container, so the host needs no toolchains,
the engine's layer cache makes an unchanged rebuild cheap, and the result — stack + the built tree
— is the app's image, tagged per build.

The steps are the local builder's (``runtime.local.build``): the whole repository is copied (monorepo
apps read ``../shared`` at build time) to ``/workspace``; Python gets a venv at ``/workspace/.venv``
and ``pip install`` of ``requirements.txt`` / an installable ``pyproject.toml``; Node gets ``npm ci``
(a lockfile) or ``npm install`` and ``npm run build`` when ``package.json`` has that script; then the
spec's ``build_command``. Build-time variables are build args, so every ``RUN`` sees them. Everything
runs as the stack's unprivileged user ``app`` (uid 10001), as the containers later do.

When the buildpacks package (``shoal.runtime.buildpacks``, with its executor interface) lands, its
recipes replace these steps; the image contract (workdir, PATH, labels) stays.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from shoal.runtime.local.detect import Stack

APP_UID = 10001
WORKSPACE = "/workspace"
VENV = f"{WORKSPACE}/.venv"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_PATH = "/usr/local/share/shoal/host-ca.crt"
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "npm_config_cafile")
_TOOL_DEFAULTS = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1",
    "npm_config_fund": "false", "npm_config_audit": "false", "npm_config_update_notifier": "false",
    "npm_config_progress": "false", "CI": "true", "HOME": "/home/app",
}


@dataclass(frozen=True)
class Steps:
    """What the build does for one stack, as shell commands run in the app's directory."""

    commands: tuple[str, ...]
    run_env: Mapping[str, str]  # baked into the image: what the app's processes see first


def app_dir(source_dir: str) -> str:
    """Where the component's files are inside the image (``source_dir`` under ``/workspace``)."""
    relative = PurePosixPath(source_dir.strip("/") or ".")
    return WORKSPACE if str(relative) == "." else f"{WORKSPACE}/{relative}"


def steps(stack: Stack, source_dir: str, files: Iterable[str], scripts: Mapping[str, str],
          build_command: str | None, installable_pyproject: bool) -> Steps:
    """The build steps the local builder would run for ``stack`` (``files``: names at the app's top)."""
    present = set(files)
    commands: list[str] = []
    run_env: dict[str, str] = {}
    if stack == "python":
        commands.append(f"python3 -m venv {VENV}")
        if "requirements.txt" in present:
            commands.append(f"{VENV}/bin/pip install -r requirements.txt")
        elif installable_pyproject:
            commands.append(f"{VENV}/bin/pip install .")
        run_env = {"VIRTUAL_ENV": VENV, "PATH": f"{VENV}/bin:{BASE_PATH}", "PYTHONUNBUFFERED": "1"}
    elif stack == "node":
        locked = "package-lock.json" in present or "npm-shrinkwrap.json" in present
        commands.append("npm ci" if locked else "npm install")
        if "build" in scripts and (build_command or "").strip() != "npm run build":
            commands.append("npm run build")
        run_env = {"PATH": f"{app_dir(source_dir)}/node_modules/.bin:{BASE_PATH}", "NODE_ENV": "production"}
    if build_command:
        commands.append(build_command)
    return Steps(tuple(commands), run_env)


def dockerfile(stack_image: str, source_dir: str, build: Steps, build_args: Iterable[str],
               ca_bundle: str | None = None) -> str:
    """The Dockerfile that runs ``build`` in a build container from ``stack_image``; ``ca_bundle`` (a
    file in the context) is the host's trusted CAs, so downloads work where the host's do (behind a
    TLS-inspecting proxy too) — the app inherits it."""
    workdir = app_dir(source_dir)
    lines = [f"FROM {stack_image}"]
    lines += [f"ARG {name}" for name in sorted(set(build_args))]
    if ca_bundle:
        lines.append(f"COPY {ca_bundle} {CA_PATH}")
        lines.append("ENV " + " ".join(f"{k}={CA_PATH}" for k in CA_VARIABLES))
    lines.append(f"COPY --chown={APP_UID}:{APP_UID} . {WORKSPACE}")
    # COPY --chown leaves the stack's own /workspace (root's) as it was: the app user must write there.
    lines.append("RUN " + json.dumps(["chown", f"{APP_UID}:{APP_UID}", WORKSPACE]))
    lines.append(f"USER {APP_UID}")
    lines.append(f"WORKDIR {workdir}")
    lines.append("ENV " + " ".join(f"{k}={json.dumps(v)}" for k, v in {**_TOOL_DEFAULTS, **build.run_env}.items()))
    for command in build.commands:
        # The exec form keeps a multi-line build_command whole; the echo names the step in the BUILD log.
        script = f"set -e\necho {shlex.quote('=> Running ' + command.splitlines()[0])}\n{command}"
        lines.append("RUN " + json.dumps(["/bin/sh", "-c", script]))
    return "\n".join(lines) + "\n"
