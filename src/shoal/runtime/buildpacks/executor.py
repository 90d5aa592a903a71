"""Where a recipe's steps run: the ``Executor`` interface and the host executor.

Role: the one seam between buildpacks (which plan) and runtimes (which own processes). An executor
can *probe* (run a short command and return its output — used to find toolchains and their versions),
*run* a ``Command`` streaming every line to the BUILD log, and *write* a file. ``HostExecutor`` does
this with subprocesses on this machine, for the process runtime.

A container executor is a small adapter: ``probe`` and ``run`` become ``exec`` in the build container
(``podman exec -w CWD --env-file ... CONTAINER ARGV``, or the API's exec), streaming its output through
``pump``; ``write`` copies the content in (``exec ... sh -c 'cat > PATH'`` with stdin, or a bind
mount); ``where`` is ``"stack image"`` so toolchains found there are logged as such; ``base_env`` is the
image's ``PATH``/``HOME``. Paths in a recipe are the container's (``BuildContext.app`` = ``/workspace``).
A provisioned toolchain is only usable there if the executor mounts the provisioner's cache at the same
path (``sees``); otherwise it returns ``False`` and shoal does not provision into it.

Must not: decide anything about a build. Failures are ``StepFailed`` with DigitalOcean's reason codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from shoal.core.aio import within
from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.recipe import Action, Command, Log, Origin, WriteFile

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_CHUNK = 65536
PROBE_TIMEOUT = 60.0
# Only these reach a build from shoal's own environment; everything else comes from the app spec.
# The machine's trust store and proxies are the operator's: package managers need them to reach registries.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
             "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class Probed:
    """A probe's exit status and its output (stdout and stderr together, stripped)."""

    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class Executor(Protocol):
    """Runs build steps somewhere: the host, or a build container."""

    @property
    def where(self) -> Origin:
        """What a toolchain found by this executor is called in the log ("host" or "stack image")."""
        ...

    def base_env(self) -> dict[str, str]:
        """The environment builds start from there (``PATH``, ``HOME``, ``LANG`` ...)."""
        ...

    def sees(self, host_path: Path) -> bool:
        """Whether a directory on the host is visible to steps at the same path (provisioned toolchains)."""
        ...

    async def probe(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: PurePosixPath | None = None) -> Probed | None:
        """Run a short command; ``None`` when its program does not exist."""
        ...

    async def run(self, command: Command, log: Log) -> None:
        """Run one step, every output line to ``log``; ``StepFailed`` on failure."""
        ...

    async def write(self, file: WriteFile) -> None:
        ...


async def execute(steps: Sequence[Action], executor: Executor, log: Log) -> None:
    """Carry out a recipe's steps in order, saying each one first."""
    for step in steps:
        log(f"=> {step.says}")
        if isinstance(step, WriteFile):
            await executor.write(step)
        else:
            await executor.run(step, log)


class HostExecutor:
    """Steps as subprocesses on this machine, each in its own session so a cancel kills the whole tree."""

    where: Origin = "host"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)

    def base_env(self) -> dict[str, str]:
        env = {k: self._environ[k] for k in INHERITED if k in self._environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return env

    def sees(self, host_path: Path) -> bool:
        return True

    async def probe(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: PurePosixPath | None = None) -> Probed | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=str(cwd) if cwd else None, env=dict(env) if env is not None else self.base_env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return None
        try:
            out, _ = await within(proc.communicate(), PROBE_TIMEOUT)
        except (asyncio.CancelledError, TimeoutError):
            _kill(proc)
            await proc.wait()
            raise
        assert proc.returncode is not None
        return Probed(proc.returncode, out.decode(errors="replace").strip())

    async def run(self, command: Command, log: Log) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *command.argv, cwd=str(command.cwd), env=dict(command.env), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError as exc:
            raise StepFailed("BuildJobFailed", f"{command.argv[0]} is not installed on this machine; it is "
                                               f"needed to {command.says[0].lower()}{command.says[1:]}") from exc
        try:
            assert proc.stdout is not None
            await pump(proc.stdout, log)
            code = await proc.wait()
        except asyncio.CancelledError:
            _kill(proc)
            await proc.wait()
            raise
        check(command, code, log)

    async def write(self, file: WriteFile) -> None:
        await asyncio.to_thread(_write, Path(file.path), file.content, file.mode)


def check(command: Command, code: int, log: Log) -> None:
    """Turn a step's exit status into the build's outcome (shared by every executor)."""
    if code == 0:
        return
    if command.may_fail:
        log(f"=> {command.says.removeprefix('Running ')} exited with status {code}; going on without it")
        return
    raise StepFailed("BuildJobExitNonZero", f"{command.says.removeprefix('Running ')} exited with status {code}")


async def pump(stream: asyncio.StreamReader, log: Log) -> None:
    """Every line of ``stream`` to ``log``, read in chunks: a progress bar without newlines must not hit
    the stream's line-length limit, and ``\\r`` redraws become separate lines."""
    pending = b""
    while chunk := await stream.read(_CHUNK):
        *lines, pending = _LINE_BREAK.split(pending + chunk)
        if len(pending) > _CHUNK:
            lines, pending = [*lines, pending], b""
        for line in lines:
            if line.strip():
                log(line.decode(errors="replace").rstrip())
    if pending.strip():
        log(pending.decode(errors="replace").rstrip())


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _write(path: Path, content: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(content, encoding="utf-8")
    partial.chmod(mode)
    os.replace(partial, path)
