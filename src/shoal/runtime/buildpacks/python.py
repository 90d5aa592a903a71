"""The Python buildpack: a virtualenv, the app's dependencies, Django's collectstatic.

As heroku-buildpack-python v322 (reference §1.5): the package manager from the files (``uv.lock`` →
``uv sync``; ``requirements.txt`` → pip; ``Pipfile.lock``/``Pipfile``; an installable ``pyproject.toml``
or ``setup.py``); the Python version from ``runtime.txt`` (``python-3.12``) then ``.python-version``;
hooks ``bin/pre_compile`` and ``bin/post_compile``; ``manage.py collectstatic --noinput`` for a Django
project unless ``DISABLE_COLLECTSTATIC`` is set (to anything but ``0``).

Differences, said here and in the BUILD log: Python is not downloaded — the version asked must be on
the stack image or the host (``pythonX.Y`` on ``PATH`` or under pyenv), and a patch version other than
the one asked is accepted with a note. The virtualenv and installs use ``uv`` when it is available
(much faster), else ``venv`` and pip. Pipfiles are installed with pip from their pins (pipenv is not
needed); a ``poetry.lock`` project gets its locked main dependencies, pinned, with pip (``poetry.py``;
Poetry is not needed either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.poetry import locked_requirements
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Log, Recipe, Toolchain, with_path
from shoal.runtime.buildpacks.toolchains import Toolchains
from shoal.runtime.buildpacks.tree import Tree

Manager = Literal["uv", "pip", "pipenv", "poetry", "pyproject", "setup.py", "none"]
_VERSION_TEXT = re.compile(r"^(?:python-)?(\d+\.\d+(?:\.\d+)?)$")
_MISSPELT = (".python_version", "python-version.txt", ".python-version.txt")


@dataclass(frozen=True)
class PythonFacts:
    """What the tree says about the build: manager, Python version asked (and where), Django."""

    manager: Manager
    version: str | None
    version_source: str
    manage_py: str | None
    django: bool


def facts(tree: Tree) -> PythonFacts:
    version, source = _version(tree)
    manage = _manage_py(tree)
    return PythonFacts(_manager(tree), version, source, manage, manage is not None and _names_django(tree))


def _manager(tree: Tree) -> Manager:
    # v322's order when several are present: pipenv → pip → poetry → uv (it warns; so do we, by choosing).
    if tree.has("Pipfile.lock") or tree.has("Pipfile"):
        return "pipenv"
    if tree.has("requirements.txt"):
        return "pip"
    if tree.has("poetry.lock"):
        return "poetry"
    if tree.has("uv.lock"):
        return "uv"
    if _installable_pyproject(tree.toml("pyproject.toml")):
        return "pyproject"
    return "setup.py" if tree.has("setup.py") else "none"


def _installable_pyproject(data: dict[str, Any]) -> bool:
    # A pyproject.toml holding only tool settings (black, ruff) is not a package; pip would fail.
    return "project" in data or "build-system" in data


def _version(tree: Tree) -> tuple[str | None, str]:
    misspelt = next((name for name in _MISSPELT if tree.has(name)), None)
    if misspelt:
        raise StepFailed("BuildJobFailed", f"found {misspelt}: the Python version file must be named .python-version")
    for name in ("runtime.txt", ".python-version"):
        if not tree.has(name):
            continue
        lines = [x.strip() for x in tree.text(name).splitlines() if x.strip() and not x.strip().startswith("#")]
        match = _VERSION_TEXT.match(lines[0]) if lines else None
        if match is None:
            shown = lines[0] if lines else "nothing"
            raise StepFailed("BuildJobFailed", f"{name} says {shown!r}; expected a version such as 3.12 or 3.12.4")
        return match.group(1), name
    pipfile = tree.json("Pipfile.lock").get("_meta", {})
    requires = pipfile.get("requires", {}) if isinstance(pipfile, dict) else {}
    for key in ("python_full_version", "python_version"):
        if isinstance(requires, dict) and requires.get(key):
            return str(requires[key]), "Pipfile.lock"
    return None, "default"


def _manage_py(tree: Tree) -> str | None:
    """The shallowest ``manage.py`` within depth 3 of the root (as the buildpack looks for it)."""
    for depth in range(3):
        found = sorted(tree.root.glob("/".join(["*"] * depth + ["manage.py"])))
        if found:
            return found[0].relative_to(tree.root).as_posix()
    return None


def _names_django(tree: Tree) -> bool:
    # The buildpack asks whether django imports; before the install that is the same as asking
    # whether the dependency files name it.
    text = " ".join(tree.text(name) for name in ("requirements.txt", "Pipfile", "Pipfile.lock", "pyproject.toml",
                                                 "uv.lock", "poetry.lock", "setup.py"))
    return re.search(r"(?i)\bdjango\b", text) is not None


async def find_python(tools: Toolchains, version: str | None, source: str, log: Log) -> Toolchain:
    """An interpreter for ``version`` (its major.minor) from the executor, or a failure naming what exists."""
    executor = tools.executor
    minor = ".".join(version.split(".")[:2]) if version else None
    names = [f"python{minor}"] if minor else ["python3"]
    if minor:  # pyenv keeps versions outside PATH; a shim answers only for the global ones
        listed = await executor.probe(["/bin/sh", "-c", f'ls -d "${{PYENV_ROOT:-$HOME/.pyenv}}"/versions/{minor}*/'
                                                        f"bin/python{minor} 2>/dev/null"])
        names += sorted((listed.output.split() if listed and listed.ok else []), reverse=True)
        names.append("python3")
    for name in names:
        found = await executor.probe([name, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        if found is not None and found.ok and (minor is None or found.output.startswith(minor + ".")):
            return Toolchain("python", found.output.splitlines()[-1], executor.where, command=name)
    present = await executor.probe(["python3", "--version"])
    have = present.output if present and present.ok else "no python3"
    raise StepFailed("BuildJobFailed", f"{source} asks for Python {version}, and there is no Python {minor} on "
                                       f"this machine ({have} is); install python{minor} or change {source}")


async def plan(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    tree = Tree(ctx.source)
    found = facts(tree)
    python = await find_python(tools, found.version, found.version_source, log)
    if found.version and python.version != found.version and found.version.count(".") == 2:
        log(f"=> {found.version_source} asks for Python {found.version}; using {python.version}, the "
            f"{found.version[:found.version.rfind('.')]} this machine has")
    uv = await tools.find("uv", log=log) if ctx.fast_installer or found.manager == "uv" else None
    venv = ctx.layers / "venv"
    run_env = {"VIRTUAL_ENV": str(venv), "PYTHONUNBUFFERED": "true", "FORWARDED_ALLOW_IPS": "*", "GUNICORN_CMD_ARGS": "--access-logfile -",
               "LANG": ctx.env.get("LANG", "en_US.UTF-8")}
    build_env = {**with_path(ctx.env, venv / "bin"), **run_env}
    steps: list[Action] = [*_hook(ctx, tree, "pre_compile", build_env), _venv(ctx, python, uv, venv)]
    steps += _install(ctx, tree, found.manager, uv, venv, build_env, log)
    steps += _collectstatic(ctx, found, venv, build_env, log)
    steps += _hook(ctx, tree, "post_compile", build_env)
    return Recipe(("digitalocean/python",), (python, *([uv] if uv else [])), tuple(steps),
                  processes=default_processes(tree), run_env=run_env, run_path=(venv / "bin",))


def _venv(ctx: BuildContext, python: Toolchain, uv: Toolchain | None, venv: PurePosixPath) -> Action:
    if uv is not None:
        # uv's virtualenvs have no pip; seed it only when the build_command calls pip (seeding fetches it).
        seed = ("--seed",) if "pip" in (ctx.build_command or "") else ()
        return ctx.command(f"Creating a virtualenv with uv (Python {python.version})", uv.exe, "venv", *seed,
                           "--quiet", "--python", python.exe, str(venv), env={"UV_PYTHON_DOWNLOADS": "never"})
    return ctx.command(f"Creating a virtualenv (Python {python.version})", python.exe, "-m", "venv", str(venv))


def _install(ctx: BuildContext, tree: Tree, manager: Manager, uv: Toolchain | None, venv: PurePosixPath,
             env: dict[str, str], log: Log) -> list[Action]:
    python = str(venv / "bin" / "python")
    if manager == "uv":
        if uv is None:
            raise StepFailed("BuildJobFailed", "uv.lock found, and uv is not available (neither on this machine "
                                               "nor from PyPI); install uv or add a requirements.txt")
        return [ctx.command("Running uv sync --locked", uv.exe, "sync", "--locked", "--no-default-groups",
                            "--compile-bytecode", "--no-progress",
                            env={**env, **_uv_env(env), "UV_PROJECT_ENVIRONMENT": str(venv)})]
    if manager == "pip":
        return [_pip(ctx, uv, python, env, "-r requirements.txt", "-r", "requirements.txt")]
    if manager == "pipenv":
        wanted = pipfile_requirements(tree, log)
        return [_pip(ctx, uv, python, env, "(from Pipfile)", *wanted)] if wanted else []
    if manager == "poetry":
        wanted = locked_requirements(tree, log)
        log(f"=> poetry.lock found: installing its {len(wanted)} locked main dependencies, as poetry install "
            "--sync --no-root --only main would (Poetry itself is not needed)")
        return [_pip(ctx, uv, python, env, "(from poetry.lock)", *wanted)] if wanted else []
    if manager in ("pyproject", "setup.py"):
        return [_pip(ctx, uv, python, env, ".", ".")]
    log("=> No requirements.txt, uv.lock, Pipfile, installable pyproject.toml or setup.py: nothing to install")
    return []


def _pip(ctx: BuildContext, uv: Toolchain | None, python: str, env: dict[str, str], shown: str,
         *args: str) -> Action:
    if uv is not None:
        return ctx.command(f"Running uv pip install {shown}", uv.exe, "pip", "install", "--python", python, *args,
                           env={**env, **_uv_env(env)})
    return ctx.command(f"Running pip install {shown}", python, "-m", "pip", "install", "--exists-action=w",
                       "--no-input", "--progress-bar", "off", *args, env=env)


def _uv_env(env: dict[str, str]) -> dict[str, str]:
    """pip's index settings in uv's words, so an app's PIP_* build variables mean the same with uv."""
    moved = {"PIP_INDEX_URL": "UV_INDEX_URL", "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
             "PIP_FIND_LINKS": "UV_FIND_LINKS", "PIP_NO_INDEX": "UV_NO_INDEX"}
    out = {uv: env[pip] for pip, uv in moved.items() if env.get(pip)}
    return {**out, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "UV_LINK_MODE": "copy"}


def _collectstatic(ctx: BuildContext, found: PythonFacts, venv: PurePosixPath, env: dict[str, str],
                   log: Log) -> list[Action]:
    if not found.django or found.manage_py is None:
        return []
    disabled = ctx.user_env.get("DISABLE_COLLECTSTATIC", "")
    if disabled not in ("", "0"):
        log("=> DISABLE_COLLECTSTATIC is set: skipping manage.py collectstatic")
        return []
    return [ctx.command(f"Running python {found.manage_py} collectstatic --noinput", str(venv / "bin" / "python"),
                        found.manage_py, "collectstatic", "--noinput", "--traceback",
                        env={"PYTHONPATH": env.get("PYTHONPATH", "."), **{k: v for k, v in env.items()
                                                                          if k != "PYTHONPATH"}})]


def _hook(ctx: BuildContext, tree: Tree, name: str, env: dict[str, str]) -> list[Action]:
    if not tree.has(f"bin/{name}"):
        return []
    return [ctx.command(f"Running bin/{name}", "/bin/sh", f"bin/{name}", env=env)]


def default_processes(tree: Tree) -> dict[str, str]:
    """The process types a Python app gets without a Procfile line (a detected app's run command too)."""
    # DigitalOcean has none (a run command is required); shoal keeps its old, harmless guess.
    for script in ("main.py", "app.py"):
        if tree.has(script):
            return {"web": f"python {script}"}
    return {}


def pipfile_requirements(tree: Tree, log: Log) -> list[str]:
    """Pip requirement strings from Pipfile.lock (pinned) or else Pipfile, without needing pipenv."""
    if tree.has("Pipfile.lock"):
        locked = tree.json("Pipfile.lock").get("default", {})
        entries: dict[str, Any] = {name: (entry.get("version", "") if isinstance(entry, dict) else "")
                                   for name, entry in (locked.items() if isinstance(locked, dict) else [])}
    else:
        packages = tree.toml("Pipfile").get("packages", {})
        entries = dict(packages) if isinstance(packages, dict) else {}
    wanted: list[str] = []
    for name, entry in entries.items():
        if isinstance(entry, dict):
            if "version" not in entry:
                log(f"=> Skipping Pipfile entry {name!r}: only version requirements are supported without pipenv")
                continue
            extras = f"[{','.join(entry.get('extras', []))}]" if entry.get("extras") else ""
            name, entry = name + extras, entry["version"]
        version = str(entry).strip()
        wanted.append(name if version in ("", "*") else name + version)
    return wanted
