"""Buildpack use cases (godo-only routes, doctl ``list-buildpacks`` and ``upgrade-buildpack``).

``upgrade_buildpack`` pins an app's buildpack to a major version in its ``build_config``
(``cnb_versioning.buildpacks[{id, major_version}]``, runtime reference §1.2) and, unless asked not
to, starts a deployment that rebuilds (``cause_details`` action ``UPGRADE_BUILDPACK``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from shoal.core.errors import BadRequest
from shoal.domain.accounts import Account
from shoal.domain.deployments import Deployment
from shoal.domain.plan import BuildStrategy, Kind, units_of
from shoal.domain.ports import AppStore
from shoal.engine.apps import refuse_if_pinned
from shoal.engine.deployments import DeploymentsService
from shoal.spec.buildpacks import BUILDPACKS_BY_ID, Buildpack

BUILDPACK_KINDS = (Kind.SERVICE, Kind.WORKER, Kind.JOB, Kind.STATIC_SITE)


@dataclass(frozen=True)
class Upgrade:
    affected_components: list[str]
    deployment: Deployment | None


def affected(spec: dict[str, Any], pack: Buildpack) -> list[str]:
    """Components a buildpack may build: buildpack-built ones (no Dockerfile, no image) whose
    ``environment_slug`` selects it, or that leave the choice to detection."""
    found = []
    for unit in units_of(spec):
        if unit.kind not in BUILDPACK_KINDS or unit.build.strategy != BuildStrategy.BUILDPACK:
            continue
        slug = unit.build.environment_slug
        if slug in pack.slugs or not slug:
            found.append(unit.name)
    return found


class BuildpacksService:
    def __init__(self, apps: AppStore, deployments: DeploymentsService) -> None:
        self._apps = apps
        self._deployments = deployments

    def upgrade(self, account: Account, app_id: str, buildpack_id: object, major_version: object,
                trigger_deployment: bool) -> Upgrade:
        app = self._deployments.app(account, app_id)
        if not isinstance(buildpack_id, str) or not buildpack_id:
            raise BadRequest("error parsing request body: 'buildpack_id' is required and must be a string")
        pack = BUILDPACKS_BY_ID.get(buildpack_id)
        if pack is None:
            raise BadRequest(f"unknown buildpack {buildpack_id!r}; available: {', '.join(sorted(BUILDPACKS_BY_ID))}")
        if major_version not in (None, 0) and (not isinstance(major_version, int) or isinstance(major_version, bool)
                                              or major_version != pack.major_version):
            raise BadRequest(f"major version {major_version!r} of {pack.id} is not available; available: "
                             f"{pack.major_version} (0 or none means the latest)")
        if trigger_deployment:
            refuse_if_pinned(app)  # before anything is written: the deployment would be refused
        config = copy.deepcopy(app.build_config or {})
        versioning = config.setdefault("cnb_versioning", {})
        pins = [p for p in versioning.get("buildpacks") or [] if p.get("id") != pack.id]
        versioning["buildpacks"] = [*pins, {"id": pack.id, "major_version": pack.major_version}]
        self._apps.set_build_config(app.id, config)
        deployment = None
        if trigger_deployment:
            deployment = self._deployments.create_deployment(account, app.id, True, cause="buildpack upgraded",
                                                             action="UPGRADE_BUILDPACK")
        return Upgrade(affected(app.spec, pack), deployment)
