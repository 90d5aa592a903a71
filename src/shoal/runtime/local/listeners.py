"""Who listens on a port: the listening sockets of ``/proc/net/tcp`` and ``tcp6`` matched, by
inode, to the descriptors of a process group.

A readiness check must mean *this* instance is ready. Another program that took the instance's
port (during its build, or a leftover of something else) would answer the probe just as well
while the instance crash-loops with EADDRINUSE; so a probe counts only when every socket
listening on the port belongs to a process of the instance's own group.
"""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on TCP ``port`` (any address, IPv4 or IPv6)."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    return found


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return members


def socket_inodes(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def listens_in_group(port: int, pgid: int) -> bool:
    """Whether something listens on ``port`` and every such socket is held by group ``pgid``.

    Without ``/proc`` (not Linux) there is no way to tell, and the probe alone decides."""
    if not os.path.isdir("/proc/net"):
        return True
    listening = listening_inodes(port)
    if not listening:
        return False
    held: set[int] = set()
    for pid in group_members(pgid):
        held |= socket_inodes(pid)
    return listening <= held
