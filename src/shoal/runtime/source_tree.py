"""What a fetched source tree would be built as: the components and deploy template ``POST /v2/apps/detect``
answers with.

Role: read a checked-out tree (blocking file reads; callers run it off the event loop) and decide with the
deployers' own rules — the Functions project reader for ``project.yml``, buildpack detection for everything
else, the spec checker for ``.do/deploy.template.yaml``. In that order: a Functions project is no app a
buildpack builds; a ``Dockerfile`` at the app's root is built as a Dockerfile (DigitalOcean prefers it over
buildpacks); else the buildpack detection decides. A plain HTML site is ``HTML`` (served as it is, no
build); a static site *generator* (Hugo, Jekyll, Hexo, Gatsby) is ``BUILDPACK``, since its buildpack has to
run to make the site.

Must not: fetch, write into the tree, or run anything found in it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import yaml

from shoal.core.errors import UnprocessableEntity
from shoal.domain.detection import (DEPLOY_TEMPLATE, DeployTemplate, Detected, DetectedBuildpack, DetectedComponent,
                                    ServerlessFunction, ServerlessPackage)
from shoal.domain.functions.model import PROJECT_FILE, Project, ProjectInvalid
from shoal.domain.plan import DEFAULT_HTTP_PORT
from shoal.runtime.buildpacks import Detection, buildpack, detect, suggested_run_command
from shoal.runtime.buildpacks.detect import SLUGS, STATIC_GENERATORS
from shoal.runtime.functions.build import load_project
from shoal.spec.buildpacks import BUILDPACKS_BY_ID
from shoal.spec.check import check
from shoal.spec.parse import parse
from shoal.spec.problems import SpecInvalid
from shoal.spec.text import load_yaml

MAX_TEMPLATE_BYTES = 256 * 1024  # a deploy template is one app spec; the API's own body limit is of this order
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.+)$", re.IGNORECASE | re.MULTILINE)
# environment_slug per detected language: the first slug naming it (node → node-js, ruby → ruby).
_SLUG_OF = {language: slug for slug, language in reversed(SLUGS.items())}


def examine(tree: Path, source_dir: str) -> Detected:
    """The components found at ``source_dir`` of ``tree`` and the repository's deploy template."""
    app_dir = _app_dir(tree, source_dir)
    shown = "" if source_dir == "." else "/" + source_dir
    component = _component(app_dir)
    found = () if component is None else (replace(component, source_dir=shown),)
    return Detected(found, deploy_template(tree))


def _app_dir(tree: Path, source_dir: str) -> Path:
    app_dir = tree / source_dir
    real, top = Path(os.path.realpath(app_dir)), Path(os.path.realpath(tree))
    if real != top and not real.is_relative_to(top):
        raise UnprocessableEntity(f'field "source_dir": {source_dir!r} leaves the repository')
    if not real.is_dir():
        raise UnprocessableEntity(f'field "source_dir": {source_dir!r} is not a directory in the repository')
    return real


def _component(app_dir: Path) -> DetectedComponent | None:
    if (app_dir / PROJECT_FILE).is_file():
        return _serverless(app_dir)
    detection = detect(app_dir)
    if (app_dir / "Dockerfile").is_file():
        return DetectedComponent("DOCKERFILE", types=_types(detection), dockerfiles=("Dockerfile",),
                                 http_ports=_exposed(app_dir / "Dockerfile"))
    if detection.language == "none":
        return None
    packs = tuple(_buildpack(b) for b in detection.buildpacks)
    slug = _SLUG_OF[detection.language]
    if detection.language == "html":
        return DetectedComponent("HTML", types=_types(detection), environment_slug=slug, buildpacks=packs)
    if detection.language in STATIC_GENERATORS:
        return DetectedComponent("BUILDPACK", types=_types(detection), environment_slug=slug, buildpacks=packs)
    return DetectedComponent("BUILDPACK", types=_types(detection), environment_slug=slug, buildpacks=packs,
                             run_command=suggested_run_command(detection, app_dir) or "",
                             http_ports=(DEFAULT_HTTP_PORT,))


def _types(detection: Detection) -> tuple[str, ...]:
    """The languages as DigitalOcean shows them: the buildpacks' names ("Python", "Node.js", "HTML")."""
    return tuple(buildpack(b).name for b in detection.buildpacks)


def _buildpack(buildpack_id: str) -> DetectedBuildpack:
    """The entry ``GET /v2/apps/buildpacks`` lists for it; else the build catalogue's (Go, PHP, ...)."""
    listed = BUILDPACKS_BY_ID.get(buildpack_id)
    if listed is not None:
        return DetectedBuildpack(listed.id, listed.version, listed.major_version, listed.name, listed.description,
                                 listed.docs_link)
    entry = buildpack(buildpack_id)
    return DetectedBuildpack(entry.id, entry.version, entry.major_version, entry.name, entry.description,
                             entry.docs_link)


def _exposed(dockerfile: Path) -> tuple[int, ...]:
    """The TCP ports a Dockerfile's ``EXPOSE`` lines name (godo: "use the last"), else 8080."""
    try:
        text = dockerfile.read_text(encoding="utf-8", errors="replace")[:MAX_TEMPLATE_BYTES]
    except OSError:
        text = ""
    ports: list[int] = []
    for line in _EXPOSE.findall(text):
        for word in line.split():
            number, _, protocol = word.partition("/")
            if number.isdigit() and 0 < int(number) < 65536 and protocol.lower() in ("", "tcp"):
                ports.append(int(number))
    return tuple(dict.fromkeys(ports)) or (DEFAULT_HTTP_PORT,)


def _serverless(app_dir: Path) -> DetectedComponent:
    """A Functions project: its packages and functions as the deployer reads them (no ``${VAR}`` values
    are known yet). A project the deployer would refuse is still a Functions project, listed without them."""
    try:
        project = load_project(app_dir, None)
    except ProjectInvalid:
        return DetectedComponent("SERVERLESS", types=("Functions",))
    return DetectedComponent("SERVERLESS", types=("Functions",), serverless_packages=_packages(project))


def _packages(project: Project) -> tuple[ServerlessPackage, ...]:
    grouped: dict[str, list[ServerlessFunction]] = {}
    for action in project.actions:
        limits = action.limits
        grouped.setdefault(action.package, []).append(ServerlessFunction(
            action.name, action.package, action.runtime, limits.timeout_ms, limits.memory_mb, limits.logs_kb))
    return tuple(ServerlessPackage(name, tuple(functions)) for name, functions in grouped.items())


def deploy_template(tree: Path) -> DeployTemplate:
    """``.do/deploy.template.yaml`` at the repository root: its ``spec`` checked as ``POST /v2/apps`` checks one."""
    path = tree / DEPLOY_TEMPLATE
    real = Path(os.path.realpath(path))
    if not path.is_file() or not real.is_relative_to(Path(os.path.realpath(tree))):
        return DeployTemplate()
    if path.stat().st_size > MAX_TEMPLATE_BYTES:
        return DeployTemplate(True, error=f"{DEPLOY_TEMPLATE} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        return DeployTemplate(True, error=f"{DEPLOY_TEMPLATE} is not valid YAML: {exc}")
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        return DeployTemplate(True, error=f"{DEPLOY_TEMPLATE} must be a mapping with a top-level spec: mapping")
    try:
        check(document["spec"])
    except SpecInvalid as invalid:
        return DeployTemplate(True, error=invalid.message)
    spec, _ = parse(document["spec"])
    return DeployTemplate(True, valid=True, spec=spec)

