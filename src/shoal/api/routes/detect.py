"""``POST /v2/apps/detect`` (godo's ``AppsService.Detect``): what a source would be built as.

The body is godo's ``DetectRequest`` — one of ``git``/``github``/``gitlab``/``bitbucket`` (the spec's own
source models and rules check it, so it is refused as a component's source would be), ``commit_sha``,
``source_dir`` — and the answer godo's ``DetectResponse`` at the body's root, every field omitted when
empty, as Go's ``omitempty`` does. Detecting is part of creating an app: the token needs ``app:create``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shoal.api.bodies import read_object
from shoal.api.context import authorized, context
from shoal.api.responses import render
from shoal.core.errors import BadRequest, Unavailable
from shoal.domain.detection import (DeployTemplate, Detected, DetectedBuildpack, DetectedComponent, DetectRequest,
                                    ServerlessPackage)
from shoal.domain.plan import GitSource, source_dir_of, source_of
from shoal.spec.models.sources import SourceFields
from shoal.spec.parse import to_problem
from shoal.spec.rules.sources import GIT_KINDS, standalone_source_problems

_FIELDS = {*GIT_KINDS, "commit_sha", "source_dir"}
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


def detect_request(body: dict[str, Any]) -> DetectRequest:
    """The typed request, or a 400 naming the first field that is wrong."""
    try:
        fields = SourceFields.model_validate({k: body[k] for k in GIT_KINDS if k in body})
    except ValidationError as error:
        raise BadRequest(_field_message(str(to_problem(error.errors(include_url=False, include_input=False)[0]))))
    block = fields.model_dump(mode="json", exclude_none=True)
    problems = list(standalone_source_problems(block))
    if problems:
        raise BadRequest(_field_message(str(problems[0])))
    source = source_of(block)
    assert isinstance(source, GitSource)  # SourceFields has no image source
    commit = body.get("commit_sha")
    if commit is not None and (not isinstance(commit, str) or not _SHA.match(commit)):
        raise BadRequest('error parsing request body: field "commit_sha": must be a commit hash (7 to 40 hex digits)')
    raw_dir = body.get("source_dir")
    if raw_dir is not None and not isinstance(raw_dir, str):
        raise BadRequest('error parsing request body: field "source_dir": expected a string')
    source_dir = source_dir_of(raw_dir)
    if ".." in PurePosixPath(source_dir).parts:
        raise BadRequest(f'error parsing request body: field "source_dir": {raw_dir!r} leaves the repository')
    return DetectRequest(source, commit.lower() if commit else None, source_dir)


def _field_message(problem: str) -> str:
    # Spec problems read 'error validating app spec field "git.branch": ...'; this body is no app spec.
    return problem.replace("error validating app spec field", "error parsing request body: field", 1)


async def apps_detect(request: Request) -> Response:
    principal = authorized(request, "app:create")
    ctx = context(request)
    if ctx.detector is None:
        raise Unavailable("source detection is not available on this server")
    body = await read_object(request, ctx.max_body_bytes, allowed=_FIELDS, required=set())
    found = await ctx.detector.detect(principal.account.id, detect_request(body))
    return render(request, detected_wire(found))


def detected_wire(found: Detected) -> dict[str, Any]:
    """godo's ``DetectResponse``; empty fields left out (``omitempty``), never ``pending``."""
    return _compact({"components": [_component(c) for c in found.components], **_template(found.template)})


def _template(template: DeployTemplate) -> dict[str, Any]:
    return {"template": {"spec": dict(template.spec)} if template.spec is not None else None,
            "template_found": template.found, "template_valid": template.valid, "template_error": template.error}


def _component(component: DetectedComponent) -> dict[str, Any]:
    return _compact({
        "strategy": component.strategy, "types": list(component.types), "dockerfiles": list(component.dockerfiles),
        "build_command": component.build_command, "run_command": component.run_command,
        "environment_slug": component.environment_slug, "http_ports": list(component.http_ports),
        "serverless_packages": [_package(p) for p in component.serverless_packages],
        "source_dir": component.source_dir, "buildpacks": [_buildpack(b) for b in component.buildpacks],
    })


def _package(package: ServerlessPackage) -> dict[str, Any]:
    return _compact({"name": package.name, "functions": [_compact({
        "name": f.name, "package": f.package, "runtime": f.runtime,
        # godo's DetectResponseServerlessFunctionLimits are strings
        "limits": {"timeout": str(f.timeout_ms), "memory": str(f.memory_mb), "logs": str(f.logs_kb)},
    }) for f in package.functions]})


def _buildpack(pack: DetectedBuildpack) -> dict[str, Any]:
    """The same object ``GET /v2/apps/buildpacks`` lists."""
    return {"id": pack.id, "version": pack.version, "major_version": pack.major_version, "latest": True,
            "name": pack.name, "description": list(pack.description), "docs_link": pack.docs_link}


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", [], {}, False, 0)}


routes = [
    Route("/v2/apps/detect", apps_detect, methods=["POST"]),
]
