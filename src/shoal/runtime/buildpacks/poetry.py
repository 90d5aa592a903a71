"""A Poetry project's locked dependencies, without Poetry: what ``poetry install --sync --no-root
--only main`` (heroku-buildpack-python, reference §1.5) would install, as pip requirement strings.

Role: pure reading of ``pyproject.toml`` and ``poetry.lock`` through ``Tree``. The main dependencies
are the project's own (``[project].dependencies``, Poetry 2, or ``[tool.poetry.dependencies]``
without ``python``, Poetry 1 — never a dev group's); from them the lock's ``dependencies`` are
followed, so every lock format (with ``category``, with ``groups``, or neither) gives the same set.
Each is pinned to its locked version (``name==1.2.3``), or to its locked git commit, URL or path, and
keeps the lock's environment marker so pip skips what does not apply here. The project itself is not
installed (``--no-root``), as on DigitalOcean.
"""

from __future__ import annotations

import re
from typing import Any

from shoal.runtime.buildpacks.recipe import Log
from shoal.runtime.buildpacks.tree import Tree

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalized(name: str) -> str:
    """PEP 503: case and runs of ``-_.`` do not tell names apart."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_requirements(tree: Tree, log: Log) -> list[str]:
    """Pip requirements for the project's main dependencies as ``poetry.lock`` pins them (sorted)."""
    packages = {normalized(str(p.get("name", ""))): p for p in tree.toml("poetry.lock").get("package", [])
                if isinstance(p, dict) and p.get("name")}
    wanted, seen = sorted(_main_dependencies(tree.toml("pyproject.toml"))), set[str]()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        found = packages.get(name)
        if found is None:
            log(f"=> {name} is a dependency in pyproject.toml but not in poetry.lock: the lock is out of date "
                "(run poetry lock); it is installed unpinned")
            continue
        wanted += [normalized(dep) for dep in (found.get("dependencies") or {})]
    return sorted(_requirement(packages[n]) if n in packages else n for n in seen)


def _main_dependencies(project: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for line in (project.get("project") or {}).get("dependencies") or []:
        match = _NAME.match(str(line))
        if match:
            names.add(normalized(match.group(1)))
    poetry = (project.get("tool") or {}).get("poetry") or {}
    for name, constraint in (poetry.get("dependencies") or {}).items():
        if normalized(name) != "python" and not (isinstance(constraint, dict) and constraint.get("optional")):
            names.add(normalized(name))
    return names


def _requirement(package: dict[str, Any]) -> str:
    name, version = str(package["name"]), str(package.get("version", ""))
    source = package.get("source") or {}
    kind = source.get("type")
    if kind == "git":
        reference = source.get("resolved_reference") or source.get("reference") or ""
        line = f"{name} @ git+{source.get('url')}@{reference}"
    elif kind in ("url", "file", "directory"):
        where = str(source.get("url", ""))
        line = f"{name} @ {where}" if kind == "url" else f"{name} @ file:{where}"
    else:
        line = f"{name}=={version}"
    markers = package.get("markers")
    if isinstance(markers, dict):  # lock-version 2.1: per group
        markers = markers.get("main")
    return f"{line} ; {markers}" if isinstance(markers, str) and markers else line
