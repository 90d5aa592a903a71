"""The buildpacks' executor inside a build container: the stack image, the app copied in, steps as ``exec``.

Role: the container runtime's adapter for ``shoal.runtime.buildpacks.Executor``. A build container is
started from the stack image (``sleep infinity``, unprivileged, as the stack's user ``app``); the
checkout is copied in as ``/workspace`` owned by that user; every probe and step of the recipe is an
``exec`` in it (the step's argv, working directory and exact environment), its output streamed to the
BUILD log; files are written with ``put_archive``. When the steps are done the container is committed
as the app's image — the stack plus the built tree — with the recipe's run environment, and removed.

The host's CA bundle, when given, is copied in and named by the usual variables, so package managers
reach their registries wherever the host's own would (a TLS-inspecting proxy too).

Provisioned toolchains live on the host and are not visible in the container (``sees`` is False), so
builds use the stack image's toolchains.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import Command, Probed, WriteFile
from shoal.runtime.buildpacks.executor import check
from shoal.runtime.buildpacks.recipe import Log, Origin
from shoal.runtime.container import containers
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.containers import RunSpec
from shoal.runtime.container.engine import Engine

APP_UID = 10001
WORKSPACE = PurePosixPath("/workspace")
CA_PATH = "/home/app/.shoal-host-ca.crt"
CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "npm_config_cafile",
                "GIT_SSL_CAINFO", "CURL_CA_BUNDLE")
_NOT_FOUND = ("executable file not found", "no such file or directory", "not found in $path")


class ContainerExecutor:
    where: Origin = "stack image"

    def __init__(self, access: EngineAccess, container_id: str, image_env: Mapping[str, str],
                 ca: bool = False) -> None:
        self._access = access
        self._id = container_id
        self._env = {"HOME": "/home/app", "LANG": "C.UTF-8", **image_env}
        if ca:
            self._env.update({name: CA_PATH for name in CA_VARIABLES})

    def base_env(self) -> dict[str, str]:
        return dict(self._env)

    def sees(self, host_path: Path) -> bool:
        return False

    async def probe(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: PurePosixPath | None = None) -> Probed | None:
        chunks: list[str] = []
        try:
            code = await self._access.call(_exec, self._id, list(argv), dict(env or self._env),
                                           str(cwd or WORKSPACE), chunks.append)
        except StepFailed:
            return None
        output = "".join(chunks).strip()
        if code in (126, 127) and any(sign in output.lower() for sign in _NOT_FOUND):
            return None
        return Probed(code, output)

    async def run(self, command: Command, log: Log) -> None:
        lines = _Lines(log)
        code = await self._access.call(_exec, self._id, list(command.argv), dict(command.env), str(command.cwd),
                                       lines.feed)
        lines.close()
        if code == 127 and command.argv:
            log(f"=> {command.argv[0]} is not in the stack image")
        check(command, code, log)

    async def write(self, file: WriteFile) -> None:
        data = file.content.encode()
        path = PurePosixPath(file.path)
        await self._access.call(_put_file, self._id, path, data, file.mode)


def _exec(engine: Engine, container_id: str, argv: list[str], env: dict[str, str], cwd: str,
          out: Any) -> int:
    """Run ``argv`` in the container, every output chunk to ``out``; its exit status."""
    try:
        created = engine.api.exec_create(container_id, argv, stdout=True, stderr=True, environment=env,
                                         workdir=cwd, user=str(APP_UID))
        for chunk in engine.api.exec_start(created["Id"], stream=True):
            out(chunk.decode(errors="replace"))
        return int(engine.api.exec_inspect(created["Id"]).get("ExitCode") or 0)
    except Exception as exc:  # the engine refused the exec (no such program, container gone)
        raise StepFailed("BuildJobFailed", f"could not run {argv[0] if argv else '?'} in the build container: "
                                           f"{exc}") from exc


class _Lines:
    """Chunks → lines for the log (a progress bar's ``\\r`` redraws become lines of their own)."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._pending = ""

    def feed(self, chunk: str) -> None:
        *lines, self._pending = (self._pending + chunk).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                self._log(line.rstrip())

    def close(self) -> None:
        if self._pending.strip():
            self._log(self._pending.rstrip())


def start(engine: Engine, name: str, stack_image: str, labels: Mapping[str, str], checkout: Path,
          ca_bundle: Path | None) -> str:
    """A build container with ``checkout`` as ``/workspace`` (and the host's CAs); its id."""
    running = containers.run(engine, RunSpec(name=name, image=stack_image, labels=labels,
                                             command=["sleep", "infinity"], user=str(APP_UID)))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(checkout, arcname=WORKSPACE.name, filter=_owned)
        if ca_bundle is not None and ca_bundle.is_file():
            tar.add(ca_bundle, arcname=CA_PATH.lstrip("/"), filter=_owned)
    engine.api.put_archive(running.id, "/", archive.getvalue())
    return running.id


def _owned(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if info.name.endswith("/.git") or "/.git/" in info.name:
        return None
    info.uid = info.gid = APP_UID
    info.uname = info.gname = "app"
    return info


def _put_file(engine: Engine, container_id: str, path: PurePosixPath, data: bytes, mode: int) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(path.name)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        info.uid = info.gid = APP_UID
        tar.addfile(info, io.BytesIO(data))
    # The directory may not exist yet: make it as the app user first.
    _exec(engine, container_id, ["mkdir", "-p", str(path.parent)], {"PATH": "/usr/bin:/bin"}, "/", lambda _: None)
    engine.api.put_archive(container_id, str(path.parent), archive.getvalue())


def commit(engine: Engine, container_id: str, reference: str, labels: Mapping[str, str], env: Mapping[str, str],
           workdir: str, command: str | None = None) -> str:
    """The build container as an image: ``reference``, with the run environment, workdir and labels.
    The run command found (the spec's, else the Procfile's) is also the image's CMD, so the image runs
    as built where no one reads shoal's labels (a Kubernetes pod)."""
    repository, _, tag = reference.rpartition(":")
    cmd = json.dumps(["/bin/sh", "-c", command] if command else ["/bin/sh"])
    changes = [f"ENV {key}={_quoted(value)}" for key, value in env.items()]
    changes += [f"WORKDIR {workdir}", f"USER {APP_UID}", f"CMD {cmd}", 'ENTRYPOINT []']
    changes += [f"LABEL {key}={_quoted(value)}" for key, value in labels.items()]
    answer = engine.api.commit(container_id, repository=repository, tag=tag, changes=changes, pause=False)
    return str(answer.get("Id") or answer.get("id") or "")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def stopped(access: EngineAccess, container_id: str) -> None:
    await access.call(containers.stop, container_id, 1)
    await asyncio.shield(access.call(containers.remove, container_id))
