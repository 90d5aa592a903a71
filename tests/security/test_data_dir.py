"""shoal's own files are for shoal alone: the data dir is 0700 and its keys, token and database
(with SQLite's -wal and -shm files) are 0600 — in a new data dir and in one an older shoal left
readable to everyone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.live import LiveServer

PRIVATE = ["shoal.db", "shoal.db-wal", "shoal.db-shm", "admin-token", "secrets.key", "signing.key", "tls/ca-key.pem"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _check(data_dir: Path) -> None:
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "tls") == 0o700
    for name in PRIVATE:
        path = data_dir / name
        assert path.is_file(), name
        assert mode(path) == 0o600, f"{name} is {oct(mode(path))}"
        assert path.stat().st_uid == os.getuid()
    for key in (data_dir / "tls").glob("*key*.pem"):
        assert mode(key) == 0o600, key


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        server.client().apps.list()
        _check(server.data_dir)  # while running: the WAL files exist now
    finally:
        server.stop()


def test_an_old_data_dir_left_open_is_tightened_on_start(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data").start()
    server.stop()
    os.chmod(server.data_dir, 0o755)
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)
    server.start()
    try:
        server.client().apps.list()
        _check(server.data_dir)
    finally:
        server.stop()
