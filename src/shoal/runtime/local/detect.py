"""Buildpack-style detection: which stack a source tree is, how it runs, where its static files are.

Role: small functions that look at a directory (file names, ``package.json``, ``Procfile``) and
return values; the builder acts on them. They run nothing and write nothing.

The choices, in the order they apply (reference §4.2–4.4):

* ``environment_slug`` wins when it names a stack shoal can build (``python``; ``node-js``,
  ``gatsby``, ``hexo``; ``html``). Other slugs (``go``, ``ruby``, ``php``, ``hugo``, ...) have no
  local builder, so the files decide and the builder says so in the build log.
* Otherwise Python markers (``requirements.txt``, ``pyproject.toml``, ``Pipfile``) come before
  ``package.json``: a Django or Flask app with a ``package.json`` for its front-end assets is far
  more common than a Node app that carries a ``requirements.txt``.
* Then static: an ``index.html`` at the top, or — only when there is no ``build_command`` that
  would produce them — one of the static output dirs already committed.
* Anything else is ``custom``: only the spec's ``build_command`` and ``run_command`` apply.

Run command: the spec's ``run_command``; else the ``Procfile`` line for the kind (``web`` for
services, ``worker`` for workers, the line named like the job for jobs); else the stack default —
Node: ``npm start`` when ``package.json`` has a ``start`` script or a ``server.js`` exists (what
``npm start`` itself falls back to); Python: ``python main.py`` or else ``python app.py`` when that
file exists (no guess at gunicorn/uvicorn module paths: a wrong guess fails later and less clearly).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from shoal.domain.plan import Kind, RunUnit

Stack = Literal["python", "node", "static", "custom", "functions"]  # functions: a Functions project

# DigitalOcean's documented environment_slug values that shoal can build locally.
_SLUG_STACKS: dict[str, Stack] = {
    "python": "python",
    "node-js": "node", "gatsby": "node", "hexo": "node",
    "html": "static",
}
PYTHON_MARKERS = ("requirements.txt", "pyproject.toml", "Pipfile")
# DigitalOcean's output_dir defaults for static sites, in its order (reference §4.4).
STATIC_DIRS = ("_static", "dist", "public", "build")
_PROCFILE_LINE = {"service": "web", "worker": "worker"}


def slug_stack(environment_slug: str | None) -> Stack | None:
    """The stack an ``environment_slug`` names, or ``None`` when shoal has no builder for it."""
    return _SLUG_STACKS.get(environment_slug or "")


def detect(app_dir: Path, environment_slug: str | None, build_command: str | None) -> Stack:
    """The stack to build ``app_dir`` with (see the module docstring for the order)."""
    by_slug = slug_stack(environment_slug)
    if by_slug is not None:
        return by_slug
    if any((app_dir / name).is_file() for name in PYTHON_MARKERS):
        return "python"
    if (app_dir / "package.json").is_file():
        return "node"
    if (app_dir / "index.html").is_file():
        return "static"
    if not build_command and any((app_dir / name).is_dir() for name in STATIC_DIRS):
        return "static"
    return "custom"


def package_scripts(app_dir: Path) -> dict[str, str]:
    """The ``scripts`` of ``package.json`` (empty when the file is missing or unreadable)."""
    try:
        data: Any = json.loads((app_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    scripts = data.get("scripts") if isinstance(data, dict) else None
    if not isinstance(scripts, dict):
        return {}
    return {str(k): str(v) for k, v in scripts.items()}


def procfile(app_dir: Path) -> dict[str, str]:
    """The process types of a ``Procfile`` (``name: command`` lines; comments and blanks skipped)."""
    try:
        text = (app_dir / "Procfile").read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, command = line.partition(":")
        if sep and not line.lstrip().startswith("#") and name.strip() and command.strip():
            found.setdefault(name.strip(), command.strip())
    return found


def run_command(unit: RunUnit, app_dir: Path, stack: Stack) -> str | None:
    """The command a component's processes run, or ``None`` when nothing says what to run."""
    if unit.run_command:
        return unit.run_command
    if unit.kind in (Kind.STATIC_SITE, Kind.FUNCTION):
        return None
    line = _PROCFILE_LINE.get(unit.kind) or (unit.name if unit.kind == Kind.JOB else "")
    from_procfile = procfile(app_dir).get(line) if line else None
    if from_procfile:
        return from_procfile
    if stack == "node" and ("start" in package_scripts(app_dir) or (app_dir / "server.js").is_file()):
        return "npm start"
    if stack == "python":
        for script in ("main.py", "app.py"):
            if (app_dir / script).is_file():
                return f"python {script}"
    return None


def static_root(app_dir: Path, output_dir: str | None) -> Path | None:
    """Where a static site's files are: ``output_dir`` if given, else the first default dir that
    exists, else ``app_dir`` itself when it holds an ``index.html``.

    ``output_dir`` is relative to ``app_dir`` (a leading ``/`` is DigitalOcean's way of writing the
    same thing); a path that climbs out of ``app_dir`` gives ``None`` rather than a path outside.
    """
    if output_dir:
        relative = PurePosixPath(output_dir.strip("/") or ".")
        if ".." in relative.parts:
            return None
        return app_dir / relative
    for name in STATIC_DIRS:
        if (app_dir / name).is_dir():
            return app_dir / name
    return app_dir if (app_dir / "index.html").is_file() else None
