"""What an instance uses, measured from real processes: per-instance cgroups v1 (made inside the cgroups
this test runs in) when the machine allows it, ``/proc`` otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from shoal.runtime.local.usage import CGROUP_ROOT, Limits, UsageMeter
from tests.receivers import wait_until

BURN = "python3 -c 'import time\nend = time.time() + 30\nwhile time.time() < end: pass'"
HOLD = "python3 -c 'import time\nblock = bytearray(64 * 2**20)\nfor i in range(0, len(block), 4096): block[i] = 1\n" \
       "time.sleep(30)'"


def _start(meter: UsageMeter, name: str, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sh", "-c", meter.join_command(name, command)], start_new_session=True)


def _end(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _cgroups_writable() -> bool:
    return UsageMeter(namespace=f"shoal-probe-{os.getpid()}").cgroups  # makes nothing until used


@pytest.mark.skipif(not _cgroups_writable(), reason="cgroups v1 are not writable here")
def test_an_instances_cgroups_count_the_cpu_and_memory_of_all_its_processes() -> None:
    meter = UsageMeter(namespace=f"shoal-test-{os.getpid()}")
    burner, holder = _start(meter, "burner", f"{BURN} & {BURN} & wait"), _start(meter, "holder", HOLD)
    try:
        time.sleep(2)
        first = meter.usage("burner", None)  # no pgid needed: the cgroup knows its processes
        time.sleep(2)
        second = meter.usage("burner", None)
        held = meter.usage("holder", None)
        assert first is not None and second is not None and held is not None
        assert second.cpu_seconds - first.cpu_seconds > 0.2  # busy grandchildren count (however loaded the machine)
        assert held.memory_bytes > 60 * 2**20 and second.memory_bytes < held.memory_bytes
        base = next(p for p in meter._bases.values())
        assert (base / "burner").is_dir()
    finally:
        _end(burner)
        _end(holder)
    time.sleep(0.2)
    meter.release("burner")
    assert not (base / "burner").exists()
    meter.close()
    assert not base.exists()


@pytest.mark.skipif(not _cgroups_writable(), reason="cgroups v1 are not writable here")
def test_an_instance_is_held_to_its_sizes_memory_and_cpus() -> None:
    meter = UsageMeter(namespace=f"shoal-test-{os.getpid()}")
    try:
        meter.join_command("small", "true", limits=Limits(256 * 2**20, 0.25))
        quota = "cpu" in meter._bases  # the CPU quota needs the cpu controller as well
        assert meter.limits("small") == Limits(256 * 2**20, 0.25 if quota else None)
        meter.join_command("small", "true", limits=Limits(2**30, 1.0))  # the same name again, larger
        assert meter.limits("small") == Limits(2**30, 1.0 if quota else None)
        meter.join_command("free", "true")
        assert meter.limits("free") == Limits(None, None)
        if quota:
            burner = _start(meter, "slow", BURN)
            meter.join_command("slow", "true", limits=Limits(None, 0.25))
            try:
                time.sleep(1)
                first = meter.usage("slow", None)
                time.sleep(2)
                second = meter.usage("slow", None)
                assert first is not None and second is not None
                assert second.cpu_seconds - first.cpu_seconds < 1.0  # a quarter CPU: ~0.5 s in 2 s, never 2
            finally:
                _end(burner)
    finally:
        time.sleep(0.2)
        for name in ("small", "free", "slow"):
            meter.release(name)
        meter.close()


@pytest.mark.skipif(not _cgroups_writable(), reason="cgroups v1 are not writable here")
def test_namespaces_of_servers_that_died_are_removed_at_start() -> None:
    dead = UsageMeter(namespace="shoal-999999999")
    dead.join_command("web-0", "true")  # made, then left behind: its server was killed
    stale = [base for base in dead._bases.values()]
    assert stale and all(p.is_dir() for p in stale)
    alive = UsageMeter(namespace=f"shoal-test-{os.getpid()}")
    alive.join_command("web-0", "true")
    assert not any(p.exists() for p in stale)
    alive.close()


def test_without_cgroups_the_process_group_is_measured_from_proc(tmp_path: Path) -> None:
    meter = UsageMeter(root=tmp_path)  # no cgroup hierarchies there
    assert not meter.cgroups and meter.join_command("x", "true") == "true"
    holder = _start(meter, "holder", HOLD)
    try:
        time.sleep(1.5)
        used = meter.usage("holder", holder.pid)
        assert used is not None and used.memory_bytes > 60 * 2**20 and used.cpu_seconds > 0
    finally:
        _end(holder)
    wait_until(lambda: meter.usage("holder", holder.pid) is None, timeout=10)  # the group is gone (zombies too)
    assert CGROUP_ROOT == Path("/sys/fs/cgroup")
