"""What each instance of the process runtime uses: CPU time and memory, from cgroups v1.

Every instance gets its own cgroup in the ``cpuacct`` and ``memory`` hierarchies, made *inside the
cgroups shoal itself runs in* (``/proc/self/cgroup``) under ``shoal-<pid>/``, so whatever accounts
for or limits shoal still covers its apps, and two servers on one machine never share names. The
instance's shell joins them before it runs the command (``join_command``), so everything it
forks is counted. ``cpuacct.usage`` is CPU nanoseconds; ``memory.usage_in_bytes`` less the page
cache (``memory.stat`` ``total_cache``) is what the instance holds, like the container engines'
"memory usage".

The same cgroups hold the instance to its size, as DigitalOcean's containers are: ``memory.limit_in_bytes``
(and the swap-inclusive limit where the kernel accounts swap) is the size's memory, and where the ``cpu``
controller is writable too, a CFS quota of the size's CPUs. The kernel's OOM killer then ends an instance
that outgrows its size (``oom_kills`` tells the runtime, which says so in the RUN_RESTARTED lines). Only
cgroup directories and ``cgroup.procs`` are handed to the app's user, never the limit files.

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

from shoal.runtime.local.process import proc_stats

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpuacct", "memory")  # needed to measure
LIMITING = ("cpu",)  # used when present: the CPU quota
CFS_PERIOD_US = 100_000
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Limits:
    """What an instance of a size may use."""

    memory_bytes: int | None = None
    cpus: float | None = None


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
            if name in (*CONTROLLERS, *LIMITING) and (root / name).is_dir():
                found[name] = root / name / path.lstrip("/")
    return found if set(CONTROLLERS) <= set(found) else None


class UsageMeter:
    """Per-instance cgroups when it can make them, ``/proc`` otherwise."""

    def __init__(self, root: Path = CGROUP_ROOT, namespace: str | None = None) -> None:
        self._own = _own_paths(root)
        self._name = namespace or f"shoal-{os.getpid()}"
        self._bases: dict[str, Path] = {}
        self._made = False
        self.cgroups = self._own is not None and all(os.access(self._own[c], os.W_OK) for c in CONTROLLERS)
        self._oom_seen: dict[str, int] = {}

    def _ensure(self) -> None:
        """The namespace, made on first use (a one-off ``shoal`` command that starts nothing makes none)."""
        if self._made or not self.cgroups or self._own is None:
            return
        self._made = True
        try:
            for controller, path in self._own.items():
                if controller in LIMITING and not os.access(path, os.W_OK):
                    continue
                _remove_stale(path)
                (path / self._name).mkdir(exist_ok=True)
                self._bases[controller] = path / self._name
        except OSError:
            self.close()
            self._bases, self.cgroups = {}, False

    def _dirs(self, instance: str) -> list[Path]:
        return [base / instance for base in self._bases.values()]

    def join_command(self, instance: str, command: str, user: tuple[int, int] | None = None,
                     limits: Limits | None = None) -> str:
        """``command`` preceded by the shell moving itself into the instance's cgroups (made now, and
        held to ``limits``). An instance running as an app's own ``user`` (uid, gid) is given the
        cgroups' ``cgroup.procs``, so its shell can move itself in (and only its own processes)."""
        self._ensure()
        if not self.cgroups:
            return command
        joins = []
        for controller, base in self._bases.items():
            path = base / instance
            with contextlib.suppress(OSError):
                path.mkdir(exist_ok=True)
                with contextlib.suppress(OSError):  # a limit refused still leaves the instance measured
                    _limit(controller, path, limits or Limits())
                if user is not None:
                    os.chown(path / "cgroup.procs", *user)
                joins.append(f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}")
        self._oom_seen[instance] = self._oom_count(instance)
        return "; ".join([*(f"{j} 2>/dev/null" for j in joins), command])

    def limits(self, instance: str) -> Limits | None:
        """The limits the instance's cgroups hold it to now (None without cgroups)."""
        memory, cpu = self._bases.get("memory"), self._bases.get("cpu")
        if memory is None:
            return None
        try:
            limit = int((memory / instance / "memory.limit_in_bytes").read_text())
            quota = int((cpu / instance / "cpu.cfs_quota_us").read_text()) if cpu else -1
            period = int((cpu / instance / "cpu.cfs_period_us").read_text()) if cpu else CFS_PERIOD_US
        except (OSError, ValueError):
            return None
        return Limits(limit if limit < 2**62 else None, quota / period if quota > 0 else None)

    def oom_kills(self, instance: str) -> int:
        """How many of the instance's processes the OOM killer ended since the last call (or its start)."""
        now = self._oom_count(instance)
        seen, self._oom_seen[instance] = self._oom_seen.get(instance, 0), now
        return max(0, now - seen)

    def oom_total(self, instance: str) -> int:
        """How many of the instance's processes the OOM killer ended since its cgroup was made."""
        return self._oom_count(instance)

    def _oom_count(self, instance: str) -> int:
        memory = self._bases.get("memory")
        if memory is None:
            return 0
        try:
            control = dict(line.split() for line in (memory / instance / "memory.oom_control").read_text().splitlines())
            return int(control.get("oom_kill", 0))
        except (OSError, ValueError):
            return 0

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
        self._oom_seen.pop(instance, None)
        for path in self._dirs(instance):
            with contextlib.suppress(OSError):
                path.rmdir()

    def close(self) -> None:
        for base in self._bases.values():
            _remove_tree(base)


def _limit(controller: str, path: Path, limits: Limits) -> None:
    """Write the instance's limits (no limit written where ``limits`` gives none: -1 lifts one)."""
    if controller == "memory":
        value = str(limits.memory_bytes) if limits.memory_bytes else "-1"
        swap = path / "memory.memsw.limit_in_bytes"
        # The swap-inclusive limit may never be below the plain one: lift it, set the plain one, then it.
        if swap.exists():
            swap.write_text("-1")
        (path / "memory.limit_in_bytes").write_text(value)
        if swap.exists() and value != "-1":
            swap.write_text(value)
    elif controller == "cpu":
        (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        quota = int(limits.cpus * CFS_PERIOD_US) if limits.cpus else -1
        (path / "cpu.cfs_quota_us").write_text(str(max(quota, 1000) if quota > 0 else -1))


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
        processes = list(proc_stats())
    except OSError:
        return None
    for _, fields in processes:
        if len(fields) < 22 or fields[2] != str(pgid).encode() or fields[0] in (b"Z", b"X"):
            continue  # another group's, or a zombie nobody reaped (its figures are final, not in use)
        seen = True
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the command).
        cpu_ticks += sum(int(f) for f in fields[11:15])
        pages += int(fields[21])
    return Usage(cpu_ticks / _TICKS, pages * _PAGE) if seen else None
