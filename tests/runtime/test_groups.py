"""Durable process records: what a killed shoal left running is ended on the next start — only
when the recorded process is still the very one that was started (pid *and* start time)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from shoal.runtime.local.groups import ProcessRecords, start_ticks
from shoal.runtime.local.process import group_alive


def _group() -> subprocess.Popen[bytes]:
    # A leader and a child in one group, as an instance's sh and its program are.
    return subprocess.Popen(["/bin/sh", "-c", "sleep 300 & sleep 300"], start_new_session=True)


def _end(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_leftover_groups_are_ended_and_their_records_dropped(tmp_path: Path) -> None:
    proc = _group()
    try:
        ProcessRecords(tmp_path).started("app-web-1234abcd-0", proc.pid, "app")
        assert (tmp_path / "app-web-1234abcd-0.json").is_file()
        ended = ProcessRecords(tmp_path).end_leftovers(grace=5)  # the next shoal
        assert [r.name for r in ended] == ["app-web-1234abcd-0"]
        proc.wait(10)
        deadline = time.monotonic() + 10
        while group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not group_alive(proc.pid)  # the child too, not only the leader
        assert list(tmp_path.iterdir()) == []
    finally:
        _end(proc)


def test_a_pid_that_is_another_process_now_is_left_alone(tmp_path: Path) -> None:
    proc = _group()
    try:
        records = ProcessRecords(tmp_path)
        records.started("app-web-1234abcd-0", proc.pid)
        path = tmp_path / "app-web-1234abcd-0.json"
        data = json.loads(path.read_text())
        data["start_ticks"] = (start_ticks(proc.pid) or 0) - 1  # the recorded process was an earlier one
        path.write_text(json.dumps(data))
        assert ProcessRecords(tmp_path).end_leftovers(grace=1) == []
        assert proc.poll() is None and not path.exists()
    finally:
        _end(proc)


def test_a_group_that_ended_normally_leaves_no_record(tmp_path: Path) -> None:
    proc = _group()
    records = ProcessRecords(tmp_path)
    records.started("app-web-1234abcd-0", proc.pid)
    _end(proc)
    records.ended("app-web-1234abcd-0", proc.pid)
    assert list(tmp_path.glob("*.json")) == []


def test_groups_of_a_shoal_that_still_runs_are_left_to_it(tmp_path: Path) -> None:
    # Failed before: `shoal token create` (a one-off command, which makes a runtime on the same data
    # dir) ended every app process of the server running beside it.
    owner = subprocess.Popen(["sleep", "300"])  # stands for the running server
    proc = _group()
    try:
        ProcessRecords(tmp_path).started("app-web-1234abcd-0", proc.pid, "app")
        path = tmp_path / "app-web-1234abcd-0.json"
        data = json.loads(path.read_text())
        data["owner_pid"], data["owner_ticks"] = owner.pid, start_ticks(owner.pid)
        path.write_text(json.dumps(data))
        assert ProcessRecords(tmp_path).end_leftovers(grace=1) == []
        assert proc.poll() is None and path.exists()
        owner.kill()
        owner.wait()
        assert [r.name for r in ProcessRecords(tmp_path).end_leftovers(grace=5)] == ["app-web-1234abcd-0"]
        proc.wait(10)
    finally:
        _end(proc)
        owner.kill()
        owner.wait()
