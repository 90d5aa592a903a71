"""Reading an app's source tree: the files buildpacks look at, tolerant of anything malformed.

Role: small read-only helpers over one directory (the app's ``source_dir``) — does a file exist, its
text, its JSON or TOML, the ``Procfile``. A file that is missing, unreadable or not valid JSON/TOML reads
as absent (empty), so detection never raises on a user's tree; the build step that needs the file then
reports what is wrong with it in the tool's own words.

Must not: write, run anything, or follow a path out of the tree: names are relative and checked, and
a name that resolves (through a symlink committed in the repo) outside the tree reads as absent, as
does anything that is not a regular file (a FIFO would hang the read). Detection runs in shoal's own
process: a ``Procfile -> /srv/shoal/admin-token`` must not put a line of that file into the run command.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

_MAX_READ = 1 << 20  # lockfiles can be large; nothing detection reads needs more than 1 MiB


@dataclass(frozen=True)
class Tree:
    """The app's directory as the builder sees it on the host."""

    root: Path

    def path(self, name: str) -> Path:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"not a path inside the app: {name!r}")
        return self.root / relative

    def _inside(self, name: str) -> Path | None:
        """Where ``name`` really is, when that is inside the tree."""
        real, top = Path(os.path.realpath(self.path(name))), Path(os.path.realpath(self.root))
        return real if real == top or top in real.parents else None

    def has(self, name: str) -> bool:
        found = self._inside(name)
        return found is not None and found.is_file()

    def has_dir(self, name: str) -> bool:
        found = self._inside(name)
        return found is not None and found.is_dir()

    def text(self, name: str) -> str:
        """The file's text, or ``""`` when it is missing, unreadable, not a regular file or outside the tree."""
        found = self._inside(name)
        if found is None or not found.is_file():
            return ""
        try:
            with found.open("rb") as handle:
                return handle.read(_MAX_READ).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def json(self, name: str) -> dict[str, Any]:
        """The file's JSON object, or ``{}`` when it is missing, invalid or not an object."""
        try:
            data: Any = json.loads(self.text(name) or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def toml(self, name: str) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text(name))
        except ValueError:
            return {}

    def glob(self, pattern: str) -> list[str]:
        """Names of files directly in the root matching ``pattern`` (sorted)."""
        try:
            return sorted(p.name for p in self.root.glob(pattern) if self.has(p.name))
        except OSError:
            return []

    def procfile(self) -> dict[str, str]:
        """The process types of a ``Procfile`` (``name: command`` lines; comments and blanks skipped)."""
        found: dict[str, str] = {}
        for line in self.text("Procfile").splitlines():
            name, sep, command = line.partition(":")
            if sep and not line.lstrip().startswith("#") and name.strip() and command.strip():
                found.setdefault(name.strip(), command.strip())
        return found

    def package_json(self) -> dict[str, Any]:
        return self.json("package.json")

    def scripts(self) -> dict[str, str]:
        """The ``scripts`` of ``package.json`` (empty when missing or malformed)."""
        scripts = self.package_json().get("scripts")
        return {str(k): str(v) for k, v in scripts.items()} if isinstance(scripts, dict) else {}

    def node_dependencies(self) -> set[str]:
        """Names in ``dependencies`` and ``devDependencies`` of ``package.json``."""
        data = self.package_json()
        names: set[str] = set()
        for field in ("dependencies", "devDependencies"):
            block = data.get(field)
            if isinstance(block, dict):
                names.update(str(name) for name in block)
        return names

    def lock_mentions(self, lockfile: str, gem_or_package: str) -> bool:
        """Whether a lockfile (``Gemfile.lock``, ``composer.lock``) lists a package by that exact name."""
        text = self.text(lockfile)
        return any(line.strip().split(" ")[0] == gem_or_package or f'"name": "{gem_or_package}"' in line
                   for line in text.splitlines())
