"""The local runtime's build executor: the buildpacks' steps as processes on this machine, as the
app's own user when shoal isolates apps (``identity``), in the app's own ``HOME`` and ``TMPDIR``.

A step is over when its first process exits; what it left in its process group is ended then (a
build must not leave processes running, as DigitalOcean's build container does not), and output
still held open by something that escaped the group (``setsid``) is waited for only briefly, so a
build that starts a daemon does not hang the deployment. A line longer than the pipe's limit comes to
the log in pieces marked ``continued``, so secrets are masked across the cuts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from shoal.core.aio import within
from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks import Command, HostExecutor, Probed, WriteFile
from shoal.runtime.buildpacks.executor import PROBE_TIMEOUT, check
from shoal.runtime.buildpacks.recipe import Log as LineLog
from shoal.runtime.local.identity import AppIdentity
from shoal.runtime.local.process import as_user, signal_group, spawn_exec

OUTPUT_DRAIN_SECONDS = 2.0


Log = Callable[[str], None]


class AppExecutor(HostExecutor):
    """``HostExecutor`` for one build of one app (``owner``: its user, ``None`` when not isolated);
    ``piece`` takes the pieces of a line too long to hold whole, all but its last."""

    def __init__(self, log: Log, owner: AppIdentity | None = None, piece: Log | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(environ)
        self._log = log
        self._piece_log = piece or log
        self._owner = owner

    def base_env(self) -> dict[str, str]:
        env = super().base_env()
        if self._owner is not None:  # the app's own home and temp dir, never shoal's
            env.pop("USER", None)
            env.update(self._owner.env())
        return env

    @property
    def _user(self) -> tuple[int, int] | None:
        return self._owner.user if self._owner else None

    async def probe(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: PurePosixPath | None = None) -> Probed | None:
        if self._owner is None:
            return await super().probe(argv, env, cwd)
        if os.sep not in argv[0] and shutil.which(argv[0], path=(env or self.base_env()).get("PATH")) is None:
            return None  # what the app's user would find missing too: the drop to its user does not say so
        try:
            proc = await asyncio.create_subprocess_exec(
                *as_user(self._user), *argv, cwd=str(cwd) if cwd else None,
                env=dict(env) if env is not None else self.base_env(), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return None
        try:
            out, _ = await within(proc.communicate(), PROBE_TIMEOUT)
        finally:
            signal_group(proc.pid, signal.SIGKILL)
        assert proc.returncode is not None
        return Probed(proc.returncode, out.decode(errors="replace").strip())

    async def run(self, command: Command, log: LineLog) -> None:
        argv, shown = list(command.argv), command.says
        if os.sep not in argv[0] and shutil.which(argv[0], path=command.env.get("PATH", os.defpath)) is None:
            raise StepFailed("BuildJobFailed", f"{argv[0]} is not installed on this machine; it is needed to "
                                               f"{shown[0].lower()}{shown[1:]}")
        child = await spawn_exec(argv, Path(command.cwd), command.env, self._line, self._piece, self._user)
        try:
            await child.protocol.exited.wait()
            with contextlib.suppress(TimeoutError):
                await within(child.protocol.output_closed.wait(), OUTPUT_DRAIN_SECONDS)
        finally:
            signal_group(child.pid, signal.SIGKILL)  # the whole tree (npm → node ...), now or when cancelled
            if child.transport.get_returncode() is None:
                await child.protocol.exited.wait()
            child.transport.close()
        check(command, child.exit_code, log)

    async def write(self, file: WriteFile) -> None:
        await super().write(file)
        if self._owner is not None:
            os.chown(file.path, self._owner.uid, self._owner.gid, follow_symlinks=False)
            # The folders the write made on the way are the app's too (a runtime script that makes its
            # own run/ beside it failed with EACCES when layers/php was root's).
            folder, tree = os.path.dirname(file.path), str(self._owner.root)
            while folder.startswith(tree + os.sep) and os.stat(folder).st_uid != self._owner.uid:
                os.chown(folder, self._owner.uid, self._owner.gid, follow_symlinks=False)
                folder = os.path.dirname(folder)

    def _line(self, raw: bytes) -> None:
        # "\r" redraws (progress bars) become separate lines; blank ones are dropped.
        for part in raw.split(b"\r"):
            if part.strip():
                self._log(part.decode(errors="replace").rstrip())

    def _piece(self, raw: bytes) -> None:
        self._piece_log(raw.decode(errors="replace"))
