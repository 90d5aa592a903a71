"""What each instance of the process runtime uses: CPU time and memory, from cgroups v1.

Every instance gets its own cgroup in the ``cpuacct`` and ``memory`` hierarchies, made *inside the
cgroups shoal itself runs in* (``/proc/self/cgroup``) under ``shoal-<pid>/``, so whatever accounts
for or limits shoal still covers its apps, and two servers on one machine never share names. The
instance's shell joins them before it runs the command (``join_command``), so everything it
forks is counted. ``cpuacct.usage`` is CPU nanoseconds; ``memory.usage_in_bytes`` less the page
cache (``memory.stat`` ``total_cache``) is what the instance holds, like the container engines'
"memory usage". Nothing is limited here: the sizes only turn usage into percentages.

Without writable cgroups v1 (not root, or a cgroup2-only host) the same figures come from
``/proc`` for the instance's process group: the process's own descendants are counted, a daemon
that left the group is not.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpuacct", "memory")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # since the instance started (all its processes, past and present)
    memory_bytes: int


def _own_paths(root: Path) -> dict[str, Path] | None:
    """Where shoal's own cgroup is in each controller's hierarchy; None without cgroups v1."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    found: dict[str, Path] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(","):
            if name in CONTROLLERS and (root / name).is_dir():
                found[name] = root / name / path.lstrip("/")
    return found if set(found) == set(CONTROLLERS) else None


class UsageMeter:
    """Per-instance cgroups when it can make them, ``/proc`` otherwise."""

    def __init__(self, root: Path = CGROUP_ROOT, namespace: str | None = None) -> None:
        self._own = _own_paths(root)
        self._name = namespace or f"shoal-{os.getpid()}"
        self._bases: dict[str, Path] = {}
        self._made = False
        self.cgroups = self._own is not None and all(os.access(p, os.W_OK) for p in self._own.values())

    def _ensure(self) -> None:
        """The namespace, made on first use (a one-off ``shoal`` command that starts nothing makes none)."""
        if self._made or not self.cgroups or self._own is None:
            return
        self._made = True
        try:
            for controller, path in self._own.items():
                _remove_stale(path)
                (path / self._name).mkdir(exist_ok=True)
                self._bases[controller] = path / self._name
        except OSError:
            self.close()
            self._bases, self.cgroups = {}, False

    def _dirs(self, instance: str) -> list[Path]:
        return [base / instance for base in self._bases.values()]

    def join_command(self, instance: str, command: str) -> str:
        """``command`` preceded by the shell moving itself into the instance's cgroups (made now)."""
        self._ensure()
        if not self.cgroups:
            return command
        joins = []
        for path in self._dirs(instance):
            with contextlib.suppress(OSError):
                path.mkdir(exist_ok=True)
                joins.append(f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}")
        return "; ".join([*(f"{j} 2>/dev/null" for j in joins), command])

    def usage(self, instance: str, pgid: int | None) -> Usage | None:
        if self.cgroups:
            found = self._cgroup_usage(instance)
            if found is not None:
                return found
        return _proc_usage(pgid) if pgid else None

    def _cgroup_usage(self, instance: str) -> Usage | None:
        if not self._bases:
            return None
        try:
            nanos = int((self._bases["cpuacct"] / instance / "cpuacct.usage").read_text())
            memory = self._bases["memory"] / instance
            used = int((memory / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (memory / "memory.stat").read_text().splitlines())
        except (OSError, ValueError, KeyError):
            return None
        return Usage(nanos / 1e9, max(0, used - int(stat.get("total_cache", 0))))

    def release(self, instance: str) -> None:
        """The instance is gone: remove its (empty) cgroups."""
        for path in self._dirs(instance):
            with contextlib.suppress(OSError):
                path.rmdir()

    def close(self) -> None:
        for base in self._bases.values():
            _remove_tree(base)


def _remove_tree(base: Path) -> None:
    """An empty cgroup directory and its empty children (cgroupfs has no recursive rmdir)."""
    for child in list(base.iterdir()) if base.is_dir() else []:
        if child.is_dir():
            with contextlib.suppress(OSError):
                child.rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()


def _remove_stale(parent: Path) -> None:
    """Namespaces of shoal servers that are gone (killed with no chance to clean up)."""
    for entry in list(parent.iterdir()) if parent.is_dir() else []:
        pid = entry.name.removeprefix("shoal-")
        if entry.name.startswith("shoal-") and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_tree(entry)


def _proc_usage(pgid: int) -> Usage | None:
    """CPU (with reaped children's) and resident memory of every live process of the group."""
    cpu_ticks, pages, seen = 0, 0, False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) < 22 or fields[2] != str(pgid).encode() or fields[0] in (b"Z", b"X"):
            continue  # another group's, or a zombie nobody reaped (its figures are final, not in use)
        seen = True
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the command).
        cpu_ticks += sum(int(f) for f in fields[11:15])
        pages += int(fields[21])
    return Usage(cpu_ticks / _TICKS, pages * _PAGE) if seen else None
