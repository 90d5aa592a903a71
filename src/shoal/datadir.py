"""The data dir's permissions: shoal's own state is readable by shoal alone.

The data dir holds the admin token, the key that seals every app's secrets, the key that signs
log links, the database and the TLS keys. It is 0700 and those files are 0600, owned by the user
shoal runs as — made so at every start, so a data dir from an older shoal (whose ``shoal.db`` was
0644) is tightened in place. SQLite gives its ``-wal`` and ``-shm`` files the database file's
mode, so the database is created 0600 before SQLite first opens it. Its folders (source mirrors,
checkouts, builds of a non-root shoal, runtime records) are 0700 too. The one exception is a dev
database run as the ``pgserver`` user (shoal as root): the data dir then belongs to that user's
group with search only (0710, ``databases``), which lets PostgreSQL reach its folder and still
keeps every app's user out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILES = ("shoal.db", "shoal.db-wal", "shoal.db-shm", "shoal.db-journal", "admin-token", "signing.key",
                 "secret.key", "secrets.key", "serve.log", "serve.pid")


def secure(data_dir: Path, sqlite_db: Path | None) -> None:
    """Create ``data_dir`` (0700) and bring what is already in it to 0700/0600."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = data_dir.stat()
    searchable_by_group = info.st_gid != os.getgid() and bool(info.st_mode & stat.S_IXGRP)
    os.chmod(data_dir, 0o710 if searchable_by_group else 0o700)
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink() and child.name != "postgres":
            os.chmod(child, 0o700)
    if sqlite_db is not None and not sqlite_db.exists():
        sqlite_db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(sqlite_db, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in PRIVATE_FILES:
        _private(data_dir / name)
    if sqlite_db is not None and sqlite_db.parent != data_dir:
        for suffix in ("", "-wal", "-shm", "-journal"):
            _private(sqlite_db.with_name(sqlite_db.name + suffix))
    tls = data_dir / "tls"
    if tls.is_dir():
        os.chmod(tls, 0o700)
        for key in tls.glob("*key*"):
            _private(key)


def _private(path: Path) -> None:
    try:
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


def sqlite_path(store_url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` store, ``None`` for any other database."""
    prefix = "sqlite:///"
    if not store_url.startswith(prefix) or store_url == prefix + ":memory:":
        return None
    return Path(store_url[len(prefix):].split("?", 1)[0])
