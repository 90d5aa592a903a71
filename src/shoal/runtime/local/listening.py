"""Which TCP ports a process group listens on, read from Linux's /proc.

Role: when a service never answers its health check, say why if the reason is the commonest one —
it listens on a port of its own (8080, hard-coded) rather than on ``$PORT``. In the process runtime
every instance gets its own ``PORT``; a container's instance is told ``PORT`` = its ``http_port``, and
what its network namespace listens on is read the same way (``namespace_ports``).

And a readiness check must mean *this* instance is ready: another program that took the
instance's port (during its build, or something left over) would answer the probe just as well
while the instance crash-loops with EADDRINUSE; so a probe counts only when every socket listening
on the port belongs to the instance's own process group (``owns_port``).

Must not: raise. Where /proc is missing or unreadable (not Linux, another user's process) the answer is
an empty set and the caller says what it said before.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")
_LISTEN = "0A"


def listening_ports(pgid: int, proc: Path = _PROC) -> set[int]:
    """TCP ports (IPv4 and IPv6) on which any process of group ``pgid`` has a listening socket."""
    inodes = {inode for pid in _group(pgid, proc) for inode in _socket_inodes(pid, proc)}
    if not inodes:
        return set()
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def namespace_ports(pid: int, proc: Path = _PROC) -> set[int]:
    """TCP ports anything listens on in the network namespace of process ``pid`` (a container's)."""
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listens_elsewhere(component: str, ports: set[int], port: int | None) -> str | None:
    """The reason for a health check that never passed when the instance listens, but not on ``port``."""
    elsewhere = sorted(ports - {port}) if port else []
    if not elsewhere or port in ports:
        return None
    return (f"{component} listens on {', '.join(map(str, elsewhere))}, not on $PORT={port}: make it listen on "
            "the port in the PORT environment variable")


def owns_port(port: int, pgid: int, proc: Path = _PROC) -> bool:
    """Whether something listens on TCP ``port`` and every such socket is held by group ``pgid``.

    Without /proc (not Linux) there is no way to tell, and the probe alone decides."""
    if not (proc / "net").is_dir():
        return True
    listening: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening.add(fields[9])
    held = {inode for pid in _group(pgid, proc) for inode in _socket_inodes(pid, proc)}
    return bool(listening) and listening <= held


def unhealthy(component: str, port: int | None, pgid: int | None, exit_code: int | None,
              tail: list[str], out_of_memory: bool = False) -> str:
    """Why an instance never became healthy, as the deployment's reason: it listens elsewhere than
    ``$PORT`` ("web listens on 8080, not on $PORT=47845"), or it exited saying its last lines, or its
    last output, or else the plain fact."""
    elsewhere = listens_elsewhere(component, listening_ports(pgid), port) if pgid and port else None
    if elsewhere:
        return elsewhere
    said = " | ".join(line.strip() for line in tail[-5:] if line.strip())[-1500:]
    if out_of_memory:
        return (f"{component} did not become healthy: it was killed for using more memory than its instance "
                "size allows; choose a larger instance_size_slug or use less; see its RUN logs")
    ending = (f"; it exited with status {exit_code}, saying: {said}" if exit_code is not None and said
              else f"; its last output: {said}" if said else "; it printed nothing")
    return f"{component} did not become healthy" + (f" on port {port}" if port else "") + ending + \
        "; see its RUN logs"


def _group(pgid: int, proc: Path) -> list[int]:
    found = []
    for entry in _listdir(proc):
        if not entry.isdigit():
            continue
        try:
            stat = (proc / entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses, so split after the last ")".
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) > 2 and rest[2] == str(pgid):
            found.append(int(entry))
    return found


def _socket_inodes(pid: int, proc: Path) -> set[str]:
    inodes = set()
    fd_dir = proc / str(pid) / "fd"
    for fd in _listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
