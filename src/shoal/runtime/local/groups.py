"""Durable records of the process groups this runtime started, so that a shoal that was killed
(``kill -9``, a crash, a power cut of the process) does not leave its apps running twice.

Every instance runs as the leader of its own process group (``process.spawn``). When it starts,
its pid, process group and start time (the kernel's, in clock ticks since boot, with the boot's
id) are written to ``DATA_DIR/runtime/processes/NAME.json``; when its whole group is gone the
record is removed. On the next start, ``end_leftovers`` ends every group a record names whose
leader is still the very process that was recorded — same pid, same start time, same boot —
and never anything found by name, so a reused pid is left alone. Each record also names the shoal
process that started the group (its pid and start time): a group whose shoal still runs is that
shoal's, not a leftover — a one-off command on the same data dir (``shoal token create`` makes a
runtime too) must never end a running server's apps. The records live in the data
dir (0700), where no app can forge one to make shoal signal a process of its choosing.

Adopting a leftover instead of ending it is not done: its output went to a pipe that died with
the old shoal, so its next line of output would kill it anyway (SIGPIPE/EPIPE).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shoal.runtime.local.process import group_alive, signal_group
from shoal.runtime.local.state import write_record

log = logging.getLogger("shoal.runtime")
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int  # the group's leader; also the process group id
    start_ticks: int  # /proc/PID/stat field 22
    boot_id: str
    app_id: str = ""
    owner_pid: int = 0  # the shoal that started it (0: a record from before owners were kept)
    owner_ticks: int = 0


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; ``None`` when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # state is field 3; starttime is field 22
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


class ProcessRecords:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._boot = boot_id()
        self._owner = (os.getpid(), start_ticks(os.getpid()) or 0)

    def _path(self, name: str) -> Path:
        return self._root / f"{name.replace('/', '_')}.json"

    def started(self, name: str, pid: int, app_id: str = "") -> None:
        ticks = start_ticks(pid)
        if ticks is None:
            return  # already gone: nothing to end later
        record = ProcessRecord(name, pid, ticks, self._boot, app_id, *self._owner)
        write_record(self._path(name), asdict(record))

    def ended(self, name: str, pid: int) -> None:
        """The group of ``pid`` is gone: forget it (unless the record is already a newer process's)."""
        path = self._path(name)
        found = self._read(path)
        if found is not None and found.pid == pid:
            path.unlink(missing_ok=True)

    def leftovers(self) -> list[ProcessRecord]:
        """Records of groups whose leader is still the process that was recorded."""
        if not self._root.is_dir():
            return []
        found = []
        for path in sorted(self._root.glob("*.json")):
            record = self._read(path)
            if record is not None and self._owned_by_another_live_shoal(record):
                continue  # its shoal runs: the group is that shoal's to stop
            if record is not None and record.boot_id == self._boot and start_ticks(record.pid) == record.start_ticks:
                found.append(record)
            else:
                path.unlink(missing_ok=True)  # gone, or a pid some other process has now
        return found

    def _owned_by_another_live_shoal(self, record: ProcessRecord) -> bool:
        owner = (record.owner_pid, record.owner_ticks)
        return (record.owner_pid > 0 and owner != self._owner and record.boot_id == self._boot
                and start_ticks(record.owner_pid) == record.owner_ticks)

    def end_leftovers(self, grace: float) -> list[ProcessRecord]:
        """End every group an earlier shoal left running: SIGTERM, SIGKILL after ``grace`` seconds."""
        left = self.leftovers()
        for record in left:
            log.warning("ending %s (process group %d), left running by an earlier shoal", record.name, record.pid)
            signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(group_alive(r.pid) for r in left) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        for record in left:
            if group_alive(record.pid):
                signal_group(record.pid, signal.SIGKILL)
            self._path(record.name).unlink(missing_ok=True)
        return left

    def _read(self, path: Path) -> ProcessRecord | None:
        try:
            data = json.loads(path.read_text())
            return ProcessRecord(str(data["name"]), int(data["pid"]), int(data["start_ticks"]), str(data["boot_id"]),
                                 str(data.get("app_id", "")), int(data.get("owner_pid", 0)),
                                 int(data.get("owner_ticks", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None
