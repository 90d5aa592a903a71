"""Each app's own unprivileged user, when shoal runs as root.

An app's processes and builds run as a uid/gid of their own, allocated the first time the app is
built, recorded in ``DATA_DIR/runtime/identities.json`` and the same on every later start. Its
tree (``APPS_DIR/<app id>``: builds, ``.home``, ``.tmp``) belongs to that user and is 0700, so
another app can read neither its sources nor its builds, nor — the kernel checks the uid —
``/proc/<pid>/environ`` of its processes; shoal's own data dir (0700, root) is out of every app's
reach. Uids are never given to a second app, even after the first is deleted: files it left in
``/tmp`` would otherwise belong to the newcomer.

The range starts at ``BASE_UID``, far above login users, subordinate-uid ranges and systemd's
dynamic users; uids with an entry in ``/etc/passwd`` are skipped. No passwd entry is made: tools
get ``HOME``/``TMPDIR`` from the environment.

When shoal does not run as root there is nobody to switch to: apps run as shoal's own user and are
not isolated from each other (``isolated()`` is False and the server says so at start).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from shoal.core.errors import Unavailable
from shoal.runtime.local.state import write_record

BASE_UID = 1_900_000_000
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def isolated() -> bool:
    """Whether apps get users of their own (only root can switch to them)."""
    return os.geteuid() == 0


@dataclass(frozen=True)
class AppIdentity:
    uid: int
    gid: int
    root: Path  # the app's tree: APPS_DIR/<app id>
    python: str  # the interpreter its builds make their virtualenv with

    @property
    def user(self) -> tuple[int, int]:
        return self.uid, self.gid

    @property
    def home(self) -> Path:
        return self.root / ".home"

    @property
    def tmp(self) -> Path:
        return self.root / ".tmp"

    def env(self) -> dict[str, str]:
        """What the app's processes are told of their own place (never shoal's HOME or TMPDIR)."""
        return {"HOME": str(self.home), "TMPDIR": str(self.tmp)}

    def prepare(self) -> None:
        """The app's tree, its home and temp dir: owned by the app, 0700."""
        for folder in (self.root, self.home, self.tmp):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chown(folder, self.uid, self.gid, follow_symlinks=False)
            os.chmod(folder, 0o700)

    def own(self, tree: Path) -> None:
        """Give ``tree`` (a build shoal just copied) to the app, never following a link out of it."""
        os.chown(tree, self.uid, self.gid, follow_symlinks=False)
        for top, dirs, files in os.walk(tree):
            for name in (*dirs, *files):
                os.chown(os.path.join(top, name), self.uid, self.gid, follow_symlinks=False)


class Identities:
    """Who each app runs as: allocated once per app, kept in a file only shoal can read."""

    def __init__(self, record: Path, apps_dir: Path, base_uid: int = BASE_UID) -> None:
        self._record = record
        self._apps_dir = apps_dir
        self._base = base_uid
        self._lock = threading.Lock()
        self._python = app_python()

    def of(self, app_id: str) -> AppIdentity:
        with self._lock:
            next_uid, apps = self._read()
            uid = apps.get(app_id)
            if uid is None:
                uid = apps[app_id] = _next_free(max(next_uid, self._base))
                self._write(uid + 1, apps)
        identity = AppIdentity(uid, uid, self._apps_dir / app_id, self._python)
        identity.prepare()
        return identity

    def forget(self, app_id: str) -> None:
        """The app is gone; its uid is not handed out again (``next`` only grows)."""
        with self._lock:
            next_uid, apps = self._read()
            if apps.pop(app_id, None) is not None:
                self._write(next_uid, apps)

    def _read(self) -> tuple[int, dict[str, int]]:
        try:
            data = json.loads(self._record.read_text())
            return int(data["next"]), {str(k): int(v) for k, v in data["apps"].items()}
        except FileNotFoundError:
            return self._base, {}

    def _write(self, next_uid: int, apps: dict[str, int]) -> None:
        write_record(self._record, {"next": next_uid, "apps": apps})


def _next_free(uid: int) -> int:
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def reachable_by_others(path: Path, execute: bool = False) -> bool:
    """Whether a user who is neither ``path``'s owner nor in its group can reach it: every directory
    above it searchable (o+x), the file itself readable (and executable, with ``execute``)."""
    try:
        real = Path(os.path.realpath(path))
        wanted = stat.S_IROTH | (stat.S_IXOTH if execute else 0)
        if real.stat().st_mode & wanted != wanted:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)
    except OSError:
        return False


def app_python() -> str:
    """The interpreter an app's build makes its virtualenv with: the one shoal runs on when other
    users can run it (the same Python version as shoal's), else the system's ``python3``."""
    own = getattr(sys, "_base_executable", None) or sys.executable
    if reachable_by_others(Path(own), execute=True) and reachable_by_others(Path(os.__file__)):
        return own
    for candidate in SYSTEM_PYTHONS:
        if reachable_by_others(Path(candidate), execute=True):
            return candidate
    return own  # nothing better: the build will say it could not run it


def unreachable_parent(path: Path) -> Path | None:
    """The first directory above ``path`` that other users cannot search, if any."""
    for parent in reversed(Path(os.path.realpath(path)).parents):
        try:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return parent
        except OSError:
            return parent
    return None


def default_apps_dir(data_dir: Path) -> Path:
    """Where app trees live when apps are isolated: outside the data dir, which stays 0700, in a
    place every app's user can reach (one folder per data dir, so two shoals never share one)."""
    digest = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:12]
    return Path("/var/lib/shoal-apps") / digest


class Isolation:
    """Where an app's builds live and whom its processes run as: a user per app when shoal runs as
    root (trees under ``apps_dir``), shoal's own user and ``DATA_DIR/builds`` otherwise."""

    def __init__(self, data_dir: Path, apps_dir: Path | None = None) -> None:
        for private in (data_dir, data_dir / "cache", data_dir / "cache" / "git", data_dir / "checkouts",
                        data_dir / "runtime"):
            private.mkdir(parents=True, exist_ok=True, mode=0o700)  # mirrors, checkouts, records: shoal's alone
        self.enabled = isolated()
        self._owners: dict[str, AppIdentity] = {}
        if not self.enabled:
            self.builds_root, self._identities = data_dir / "builds", None
            self.toolchains = data_dir / "toolchains"
            return
        self.builds_root = apps_dir or default_apps_dir(data_dir)
        # Toolchains shoal provisions (from PyPI) must be runnable by every app's user: beside the
        # apps' trees, not in the data dir.
        self.toolchains = self.builds_root / ".toolchains"
        self.builds_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        os.chmod(self.builds_root, 0o711)  # searchable, not listable: each app finds only its own tree
        blocked = unreachable_parent(self.builds_root / "app")
        if blocked is not None:
            raise Unavailable(f"apps dir {self.builds_root}: {blocked} cannot be searched by other users, so apps "
                              "running as their own users could not reach their builds; chmod o+x it or choose "
                              "another --apps-dir")
        self._identities = Identities(data_dir / "runtime" / "identities.json", self.builds_root)

    def owner(self, app_id: str) -> AppIdentity | None:
        """The app's identity (allocated on first use, its tree prepared); ``None`` when not isolated."""
        if self._identities is None:
            return None
        found = self._owners.get(app_id)
        if found is None:
            found = self._owners[app_id] = self._identities.of(app_id)
        return found

    def env(self, app_id: str) -> dict[str, str]:
        owner = self.owner(app_id)
        return owner.env() if owner else {}

    def user(self, app_id: str) -> tuple[int, int] | None:
        owner = self.owner(app_id)
        return owner.user if owner else None

    def remove(self, app_id: str) -> None:
        """The app was deleted: its tree goes, and its uid is never handed out again."""
        self._owners.pop(app_id, None)
        if self._identities is not None:
            shutil.rmtree(self.builds_root / app_id, ignore_errors=True)
            self._identities.forget(app_id)
