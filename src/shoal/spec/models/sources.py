"""Where a component's code comes from: git, GitHub, GitLab, Bitbucket or a container image."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shoal.spec.models.base import SpecModel

RegistryType = Literal["DOCKER_HUB", "DOCR", "GHCR"]


class GitSource(SpecModel):
    repo_clone_url: Annotated[str, Field(max_length=255)] | None = None
    branch: str | None = None


class RepoSource(SpecModel):
    """GitHub, GitLab and Bitbucket sources share one shape; the repo pattern differs (see rules)."""

    repo: str | None = None
    branch: str | None = None
    deploy_on_push: bool | None = None


class ImageDeployOnPush(SpecModel):
    enabled: bool | None = None


class ImageSource(SpecModel):
    registry: Annotated[str, Field(max_length=192)] | None = None
    registry_type: RegistryType | None = None
    registry_credentials: str | None = None
    repository: Annotated[str, Field(max_length=192)] | None = None
    tag: Annotated[str, Field(max_length=192)] | None = None
    digest: Annotated[str, Field(max_length=192)] | None = None
    deploy_on_push: ImageDeployOnPush | None = None


class SourceFields(SpecModel):
    """The source fields every component may carry; exactly one must be set (see rules)."""

    git: GitSource | None = None
    github: RepoSource | None = None
    gitlab: RepoSource | None = None
    bitbucket: RepoSource | None = None
