"""The reaper: the process groups this server started die with it, even by ``kill -9``.

With several servers, the app's new owner restores it, so whatever the dead owner ran must not
keep running beside the new copy. ``PR_SET_PDEATHSIG`` would reach only each group's leader (not
``npm``'s ``node`` or a shell's background job), so instead one small helper process per server
holds the read end of a pipe whose write end only this server has: every group started is written
to it (``+PGID``), every group stopped too (``-PGID``); when the pipe reaches end-of-file — this
server is gone, however it went — the helper SIGKILLs every group still listed, and exits.
"""

from __future__ import annotations

import os
import subprocess
import sys

_HELPER = r"""
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[:1], int(line[1:])
    (groups.add if sign == "+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
"""


class Reaper:
    def __init__(self) -> None:
        # Its own session, so a signal to the server's process group does not reach it first.
        self._helper = subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, text=True, bufsize=1)
        assert self._helper.stdin is not None
        os.set_inheritable(self._helper.stdin.fileno(), False)  # never held open by an app process

    def started(self, pgid: int) -> None:
        self._tell(f"+{pgid}")

    def stopped(self, pgid: int) -> None:
        self._tell(f"-{pgid}")

    def _tell(self, line: str) -> None:
        stdin = self._helper.stdin
        if stdin is not None and not stdin.closed:
            stdin.write(line + "\n")

    def close(self) -> None:
        """This server stopped what it started: the helper has nothing left to do."""
        if self._helper.stdin is not None and not self._helper.stdin.closed:
            self._helper.stdin.close()
        self._helper.wait(timeout=10)
