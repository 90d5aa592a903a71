"""Sources: exactly one per component, repository formats, and container image settings."""

from __future__ import annotations

import re
from collections.abc import Iterator

from shoal.spec.problems import Problem
from shoal.spec.repos import clone_url_problem
from shoal.spec.rules.view import KIND_LABELS, Json, components, flag, obj, text

GIT_KINDS = ("git", "github", "gitlab", "bitbucket")
IMAGE_FORBIDDEN = ("static_sites", "functions")
_GITHUB_REPO = re.compile(r"^[^/]+/[^/]+$")
_NESTED_REPO = re.compile(r"^[^/]+(/[^/]+)+$")


def check_sources(spec: Json) -> Iterator[Problem]:
    for kind, path, component in components(spec):
        present = [k for k in (*GIT_KINDS, "image") if component.get(k) is not None]
        if kind in IMAGE_FORBIDDEN and "image" in present:
            present.remove("image")
            yield Problem(
                f"{path}.image",
                f"{KIND_LABELS[kind]} cannot use an image source; use git, github, gitlab or bitbucket",
            )
        allowed = "git, github, gitlab or bitbucket" if kind in IMAGE_FORBIDDEN else "git, github, gitlab, bitbucket or image"
        if not present:
            yield Problem(path, f"a source is required: one of {allowed}")
        elif len(present) > 1:
            yield Problem(path, f"only one source may be set, found {len(present)}: {', '.join(present)}")
        yield from _repo_problems(path, component)
        image = obj(component, "image")
        if image is not None and kind not in IMAGE_FORBIDDEN:
            yield from _image_problems(f"{path}.image", image)


def standalone_source_problems(block: Json) -> Iterator[Problem]:
    """A git source given on its own, outside a spec (``POST /v2/apps/detect``): exactly one of git,
    github, gitlab or bitbucket, checked as a component's; paths are the block's own (``git.branch``)."""
    present = [k for k in GIT_KINDS if block.get(k) is not None]
    if not present:
        yield Problem("git", "a source is required: one of git, github, gitlab or bitbucket")
    elif len(present) > 1:
        yield Problem(present[1], f"only one source may be set, found {len(present)}: {', '.join(present)}")
    for problem in _repo_problems("", block):
        yield Problem(problem.path.lstrip("."), problem.message)


def _repo_problems(path: str, component: Json) -> Iterator[Problem]:
    git = obj(component, "git")
    url = text(git, "repo_clone_url") if git is not None else None
    if git is not None and not url:
        yield Problem(f"{path}.git.repo_clone_url", "is required")
    elif url and (why := clone_url_problem(url)):
        yield Problem(f"{path}.git.repo_clone_url", why)
    for kind in GIT_KINDS:
        branch = text(obj(component, kind) or {}, "branch")
        if branch and (branch.startswith("-") or any(ord(c) < 33 or ord(c) == 127 for c in branch)):
            yield Problem(f"{path}.{kind}.branch", "must be a branch name: no leading '-', spaces or control characters")
    for kind, pattern, shape in (
        ("github", _GITHUB_REPO, "owner/repo"),
        ("gitlab", _NESTED_REPO, "group/repo"),
        ("bitbucket", _NESTED_REPO, "workspace/repo"),
    ):
        source = obj(component, kind)
        if source is None:
            continue
        repo = text(source, "repo")
        if not repo:
            yield Problem(f"{path}.{kind}.repo", "is required")
        elif not pattern.match(repo):
            yield Problem(f"{path}.{kind}.repo", f'"{repo[:64]}" must have the form {shape}')


def _image_problems(path: str, image: Json) -> Iterator[Problem]:
    registry_type = text(image, "registry_type")
    registry = text(image, "registry")
    if image.get("registry_type") is None:
        yield Problem(f"{path}.registry_type", "is required: one of DOCR, DOCKER_HUB or GHCR")
    if not text(image, "repository"):
        yield Problem(f"{path}.repository", "is required")
    if text(image, "tag") and text(image, "digest"):
        yield Problem(f"{path}.digest", "only one of tag or digest may be set")
    if registry_type == "DOCR" and registry:
        yield Problem(f"{path}.registry", "must be empty when registry_type is DOCR")
    if registry_type == "DOCKER_HUB" and not registry:
        yield Problem(f"{path}.registry", "is required when registry_type is DOCKER_HUB")
    deploy_on_push = obj(image, "deploy_on_push")
    if deploy_on_push is not None and flag(deploy_on_push, "enabled"):
        if registry_type not in (None, "DOCR"):
            yield Problem(f"{path}.deploy_on_push.enabled", "is only supported for DOCR images")
        if text(image, "digest"):
            yield Problem(f"{path}.deploy_on_push.enabled", "cannot be used with an image digest")
