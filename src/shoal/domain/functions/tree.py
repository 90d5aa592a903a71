"""The ``packages/<package>/<action>`` tree of a Functions project: which actions its files hold.

The files, not ``project.yml``, decide which actions exist (reference §3.1): a single source file is an action
named after its stem, a directory an action named after the directory. Kept apart from the ``project.yml``
reader because it owns a different input (the relative paths under the project root) and a different rule
(which file a directory's runtime starts from). Pure: it is handed paths and never reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from shoal.domain.functions.model import ProjectProblem

_EXTENSIONS = {".py": "python", ".js": "nodejs", ".mjs": "nodejs", ".cjs": "nodejs", ".ts": "nodejs",
               ".go": "go", ".php": "php"}


@dataclass(frozen=True)
class Found:
    """An action as the files show it, before ``project.yml`` configures it."""

    package: str
    name: str
    path: str
    is_directory: bool
    language: str | None  # inferred from the files
    names: frozenset[str] = frozenset()  # a directory's files, relative to it


def _language_of_directory(names: set[str]) -> str | None:
    if "__main__.py" in names or "requirements.txt" in names or any(n.endswith(".py") for n in names):
        return "python"
    if "package.json" in names or any(PurePosixPath(n).suffix in (".js", ".mjs", ".cjs", ".ts") for n in names):
        return "nodejs"
    if any(n.endswith(".go") for n in names):
        return "go"
    if any(n.endswith(".php") for n in names):
        return "php"
    return None


def scan(files: Iterable[str], problems: list[ProjectProblem]) -> dict[tuple[str, str], Found]:
    """The actions the ``packages/`` tree holds (hidden files and files outside packages skipped)."""
    singles: dict[tuple[str, str], list[str]] = {}
    directories: dict[tuple[str, str], set[str]] = {}
    for raw in files:
        parts = PurePosixPath(raw).parts
        if len(parts) < 3 or parts[0] != "packages" or any(p.startswith(".") for p in parts[1:3]):
            continue
        package, entry = parts[1], parts[2]
        if len(parts) == 3:
            stem = PurePosixPath(entry).stem
            if PurePosixPath(entry).suffix in _EXTENSIONS:
                singles.setdefault((package, stem), []).append(raw)
        else:
            directories.setdefault((package, entry), set()).add("/".join(parts[3:]))
    found: dict[tuple[str, str], Found] = {}
    for key, paths in singles.items():
        if len(paths) > 1 or key in directories:
            clash = sorted(paths) + ([f"packages/{key[0]}/{key[1]}/"] if key in directories else [])
            problems.append(ProjectProblem(f"packages/{key[0]}", "", f"action {key[1]!r} is defined more than "
                                           f"once: {', '.join(clash)}"))
            continue
        path = paths[0]
        found[key] = Found(key[0], key[1], path, False, _EXTENSIONS[PurePosixPath(path).suffix])
    for key, names in directories.items():
        if key not in singles:
            found[key] = Found(key[0], key[1], f"packages/{key[0]}/{key[1]}", True, _language_of_directory(names),
                                frozenset(names))
    return found


def entry_of(on_disk: Found, runtime: str, problems: list[ProjectProblem]) -> str | None:
    """What the worker loads. A directory needs the file its runtime starts from: ``__main__.py``
    (OpenWhisk's rule for zipped Python actions) or a ``package.json``/``index.js``; a directory
    holding one source file of the language (DigitalOcean's samples: ``packages/sample/hello/hello.py``)
    is that file."""
    if not on_disk.is_directory:
        return on_disk.path
    language = runtime.split(":", 1)[0].removesuffix("-lambda")
    top = sorted(n for n in on_disk.names if "/" not in n and not n.startswith("."))
    if language == "python":
        if "__main__.py" in top:
            return f"{on_disk.path}/__main__.py"
        sources = [n for n in top if n.endswith(".py")]
        if len(sources) == 1:
            return f"{on_disk.path}/{sources[0]}"
        problems.append(ProjectProblem(on_disk.path, "", "a Python function directory needs a __main__.py holding "
                                                         "its main function (or a single .py file)"))
    elif language == "nodejs":
        if {"package.json", "index.js"} & set(top):
            return on_disk.path
        sources = [n for n in top if PurePosixPath(n).suffix in (".js", ".mjs", ".cjs")]
        if len(sources) == 1:
            return f"{on_disk.path}/{sources[0]}"
        problems.append(ProjectProblem(on_disk.path, "", "a Node.js function directory needs a package.json "
                                                         "(its \"main\" file), an index.js or a single .js file"))
    else:
        return on_disk.path
    return None

