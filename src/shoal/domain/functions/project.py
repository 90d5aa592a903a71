"""A DigitalOcean Functions project (``project.yml`` plus ``packages/<package>/<action>``), read and checked.

Pure: the caller hands in the text of ``project.yml`` (or ``None``), the relative paths of the files
under the project root, and — when it knows them — the component's variables for ``${VAR}``. What
comes back is a frozen ``Project``, or ``ProjectInvalid`` listing *every* problem with its file and
path (``project.yml: packages[0].actions[1].limits.timeout: ...``), the way spec problems are listed.

The rules are the deployer's (reference §3.1): the files decide which actions exist; ``project.yml``
adds settings to them (and may only name actions that exist on disk); the package ``default`` means
"no package"; a single file is an action named after its stem, a directory is an action named after
the directory; ``parameters`` and ``environment`` are merged project < package < action; ``web`` is
``true`` unless set (``false`` or ``"raw"``) and a package's ``web`` is its actions' default; limits
are in OpenWhisk's units (``timeout`` ms, ``memory`` MB, ``logs`` KB) within DigitalOcean's bounds
(§3.2). Substitution is per value, after YAML parsing, so a variable holding ``:`` or a newline cannot
change the document's structure. Sequences, docker actions, ``binary`` uploads and package bindings
are reported as not supported here rather than ignored; triggers are noted (App Platform does not run
them either).

This module reads ``project.yml`` and puts the parts together; what it builds is in ``model``, the
``packages/`` tree in ``tree``, the ``${VAR}`` replacement in ``substitution``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from shoal.domain.functions.model import (DEFAULT_LOGS_KB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS, MEMORY_RANGE_MB,
                                          PROJECT_FILE, TIMEOUT_RANGE_MS, Action, Limits, Project, ProjectInvalid,
                                          ProjectProblem, WebMode)
from shoal.domain.functions.substitution import substitute
from shoal.domain.functions.tree import Found, entry_of, scan

LANGUAGES = ("python", "nodejs", "go", "php")
# What ``<language>:default`` means here: the versions DigitalOcean's runtime repos build.
DEFAULT_VERSIONS = {"python": "3.11", "nodejs": "18", "go": "1.17", "php": "8.0"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
_RUNTIME = re.compile(r"^(?P<language>[a-z]+)(?:-lambda)?:(?P<version>default|\d+(?:\.\d+)*)$")


class _Loader(yaml.SafeLoader):
    """YAML as JSON sees it: ``2024-01-01`` stays a string (parameters travel as JSON)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

_TOP_KEYS = frozenset({"packages", "parameters", "environment", "targetNamespace", "cleanNamespace", "bucket"})
_PACKAGE_KEYS = frozenset({"name", "actions", "functions", "shared", "annotations", "parameters", "environment",
                           "web", "binding", "clean"})
_ACTION_KEYS = frozenset({"name", "runtime", "main", "binary", "docker", "sequence", "web", "webSecure",
                          "annotations", "parameters", "environment", "limits", "remoteBuild", "localBuild",
                          "triggers", "clean"})
_LIMIT_KEYS = frozenset({"timeout", "memory", "logs"})
_UNSUPPORTED = {"sequence": "sequences are not supported by shoal", "docker": "docker actions are not supported "
                "by shoal", "binary": "binary (pre-zipped) actions are not supported by shoal"}



def _load(text: str | None, problems: list[ProjectProblem]) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problems.append(ProjectProblem(PROJECT_FILE, "", f"is not valid YAML{where}: "
                                                         f"{getattr(exc, 'problem', None) or exc}"))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(ProjectProblem(PROJECT_FILE, "", "must be a mapping with a packages list"))
        return {}
    return data


def _keys(raw: Mapping[str, Any], allowed: frozenset[str], path: str, problems: list[ProjectProblem]) -> None:
    for key in raw:
        if key not in allowed:
            problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}" if path else str(key),
                                           f"unknown key; expected one of {', '.join(sorted(allowed))}"))


def _mapping(raw: Any, path: str, problems: list[ProjectProblem], strings: bool = False) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(ProjectProblem(PROJECT_FILE, path, "must be a mapping"))
        return {}
    if strings:
        for key, value in raw.items():
            if not isinstance(value, str):
                problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}", "environment values must be strings "
                                                                                "(quote the value)"))
        return {str(k): v for k, v in raw.items() if isinstance(v, str)}
    return {str(k): v for k, v in raw.items()}


def _web(raw: Any, path: str, problems: list[ProjectProblem]) -> WebMode | None:
    if raw is None:
        return None
    if raw is True or raw in ("true", "yes"):
        return WebMode.ON
    if raw is False or raw in ("false", "no"):
        return WebMode.OFF
    if raw == "raw":
        return WebMode.RAW
    problems.append(ProjectProblem(PROJECT_FILE, path, 'must be true, false or "raw"'))
    return None


def _limit(raw: Mapping[str, Any], key: str, default: int, bounds: tuple[int, int] | None, unit: str, path: str,
           problems: list[ProjectProblem]) -> int:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}", f"must be a whole number of {unit}"))
        return default
    low, high = bounds or (0, 1 << 31)
    if not low <= value <= high:
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}", f"must be between {low} and {high} {unit}"))
        return default
    return value


def _limits(raw: Any, path: str, problems: list[ProjectProblem]) -> Limits:
    found = _mapping(raw, path, problems)
    _keys(found, _LIMIT_KEYS, path, problems)
    return Limits(timeout_ms=_limit(found, "timeout", DEFAULT_TIMEOUT_MS, TIMEOUT_RANGE_MS, "milliseconds", path,
                                    problems),
                  memory_mb=_limit(found, "memory", DEFAULT_MEMORY_MB, MEMORY_RANGE_MB, "MB", path, problems),
                  logs_kb=_limit(found, "logs", DEFAULT_LOGS_KB, None, "KB", path, problems))


def _runtime(raw: Any, inferred: str | None, path: str, file: str, problems: list[ProjectProblem]) -> str | None:
    if raw is None:
        if inferred is None:
            problems.append(ProjectProblem(file, "", "cannot tell which runtime this action needs: set runtime "
                                                     "(e.g. python:3.11, nodejs:18) in project.yml"))
            return None
        return f"{inferred}:{DEFAULT_VERSIONS[inferred]}"
    match = _RUNTIME.match(raw) if isinstance(raw, str) else None
    if match is None or match.group("language") not in LANGUAGES:
        problems.append(ProjectProblem(PROJECT_FILE, path, f"unknown runtime {raw!r}; expected <language>:<version> "
                                                           f"with a language of {', '.join(LANGUAGES)}"))
        return None
    language, version = match.group("language"), match.group("version")
    return f"{language}:{DEFAULT_VERSIONS[language] if version == 'default' else version}"


def _name(raw: Any, path: str, problems: list[ProjectProblem]) -> str | None:
    if not isinstance(raw, str) or not _NAME.match(raw):
        problems.append(ProjectProblem(PROJECT_FILE, path, "must be a name of letters, digits, _ . @ -"))
        return None
    return raw


@dataclass
class _Layer:
    """What a package passes down to its actions."""

    parameters: dict[str, Any]
    environment: dict[str, str]
    web: WebMode | None = None


def read_project(text: str | None, files: Iterable[str], env: Mapping[str, str] | None = None) -> Project:
    """The project, or ``ProjectInvalid`` with every problem. ``env`` ``None``: no ``${VAR}`` substitution
    (the build checks the structure before the run-time variables are known)."""
    problems: list[ProjectProblem] = []
    found = scan(files, problems)
    data = substitute(_load(text, problems), env, "", problems)
    _keys(data, _TOP_KEYS, "", problems)
    top = _Layer(_mapping(data.get("parameters"), "parameters", problems),
                 _mapping(data.get("environment"), "environment", problems, strings=True))
    actions: dict[tuple[str, str], Action] = {}
    notes: list[str] = []
    packages = data.get("packages")
    if packages is not None and not isinstance(packages, list):
        problems.append(ProjectProblem(PROJECT_FILE, "packages", "must be a list"))
        packages = []
    seen_packages: dict[str, _Layer] = {}
    for i, raw in enumerate(packages or []):
        path = f"packages[{i}]"
        if not isinstance(raw, dict):
            problems.append(ProjectProblem(PROJECT_FILE, path, "must be a mapping with a name"))
            continue
        name = _name(raw.get("name"), f"{path}.name", problems)
        if name is None:
            continue
        layer = _package_layer(raw, top, path, problems)
        seen_packages[name] = layer
        for j, action in enumerate(_action_list(raw, path, problems)):
            made = _action(name, action, layer, found, f"{path}.{_list_key(raw)}[{j}]", problems, notes)
            if made is not None:
                if (name, made.name) in actions:
                    problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{_list_key(raw)}[{j}].name",
                                                   f"action {made.qualified_name} is listed twice"))
                actions[(name, made.name)] = made
    for key, item in sorted(found.items()):  # on disk, not in project.yml: every default applies
        if key not in actions:
            layer = seen_packages.get(key[0], top)
            made = _action(key[0], {"name": key[1]}, layer, found, "", problems, notes)
            if made is not None:
                actions[key] = made
    if problems:
        raise ProjectInvalid(problems)
    return Project(tuple(actions[k] for k in sorted(actions)), tuple(notes))


def _list_key(raw: Mapping[str, Any]) -> str:
    return "functions" if "functions" in raw and "actions" not in raw else "actions"


def _action_list(raw: Mapping[str, Any], path: str, problems: list[ProjectProblem]) -> list[Any]:
    key = _list_key(raw)
    listed = raw.get(key)
    if listed is None:
        return []
    if not isinstance(listed, list):
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}", "must be a list"))
        return []
    return listed


def _package_layer(raw: Mapping[str, Any], top: _Layer, path: str, problems: list[ProjectProblem]) -> _Layer:
    _keys(raw, _PACKAGE_KEYS, path, problems)
    if raw.get("binding"):
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.binding", "package bindings are not supported by shoal"))
    return _Layer({**top.parameters, **_mapping(raw.get("parameters"), f"{path}.parameters", problems)},
                  {**top.environment, **_mapping(raw.get("environment"), f"{path}.environment", problems,
                                                 strings=True)},
                  _web(raw.get("web"), f"{path}.web", problems))


def _action(package: str, raw: Any, layer: _Layer, found: Mapping[tuple[str, str], Found], path: str,
            problems: list[ProjectProblem], notes: list[str]) -> Action | None:
    if not isinstance(raw, dict):
        problems.append(ProjectProblem(PROJECT_FILE, path, "must be a mapping with a name"))
        return None
    name = _name(raw.get("name"), f"{path}.name", problems)
    if name is None:
        return None
    _keys(raw, _ACTION_KEYS, path, problems)
    for key, message in _UNSUPPORTED.items():
        if raw.get(key):
            problems.append(ProjectProblem(PROJECT_FILE, f"{path}.{key}", message))
    if raw.get("triggers"):
        notes.append(f"{package}/{name}: triggers are not run (App Platform does not run them either)")
    on_disk = found.get((package, name))
    if on_disk is None:
        problems.append(ProjectProblem(PROJECT_FILE, path, f"no file or directory packages/{package}/{name} "
                                                           "(a single source file or a directory) holds this action"))
        on_disk = Found(package, name, "", False, "python")  # go on, so every other problem is found too
    runtime = _runtime(raw.get("runtime"), on_disk.language, f"{path}.runtime", on_disk.path, problems)
    main = raw.get("main", "main")
    if not isinstance(main, str) or not main:
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.main", "must be the name of the function to call"))
    secure = raw.get("webSecure")
    if secure is not None and secure is not False and not isinstance(secure, str):
        problems.append(ProjectProblem(PROJECT_FILE, f"{path}.webSecure", "must be false or a secret string"))
    web = _web(raw.get("web"), f"{path}.web", problems) or layer.web or WebMode.ON
    parameters = {**layer.parameters, **_mapping(raw.get("parameters"), f"{path}.parameters", problems)}
    environment = {**layer.environment, **_mapping(raw.get("environment"), f"{path}.environment", problems,
                                                   strings=True)}
    annotations = _mapping(raw.get("annotations"), f"{path}.annotations", problems)
    limits = _limits(raw.get("limits"), f"{path}.limits", problems)
    entry = entry_of(on_disk, runtime, problems) if runtime is not None else None
    if runtime is None or entry is None or not isinstance(main, str):
        return None
    return Action(package=package, name=name, runtime=runtime, path=on_disk.path, is_directory=on_disk.is_directory,
                  entry=entry, main=main or "main", web=web, web_secure=secure if isinstance(secure, str) else None,
                  parameters=MappingProxyType(parameters), environment=MappingProxyType(environment),
                  annotations=MappingProxyType(annotations), limits=limits)
