"""The defaults DigitalOcean applies when it runs a spec but does not write into the spec it echoes.

GET returns the spec as the user wrote it, plus what DigitalOcean itself shows (``http_port``,
env ``scope``, component routes as ``ingress.rules``; see ``normalize``). What it only applies
at run time stays out of the stored spec, or Terraform sees drift after every apply
("the plan was not empty"): env ``type: GENERAL``, a static site's ``index_document``, a compute
component's ``instance_count: 1`` and ``instance_size_slug``, an image's ``tag: latest``, a job's
``kind`` (UNSPECIFIED runs as POST_DEPLOY) and the app's ``region``.

``effective`` returns a spec with those running defaults filled in, so that two specs that differ
only by a default written out or left out compare equal (``shoal.spec.diff``): re-applying a spec
read back from the API, or adding ``instance_count: 1``, changes nothing that runs.
"""

from __future__ import annotations

import copy
from typing import Any

from shoal.spec import catalog

Json = dict[str, Any]

DEFAULT_INDEX_DOCUMENT = "index.html"
DEFAULT_ENV_SCOPE = "RUN_AND_BUILD_TIME"
DEFAULT_ENV_TYPE = "GENERAL"
DEFAULT_JOB_KIND = "POST_DEPLOY"
DEFAULT_IMAGE_TAG = "latest"
DEFAULT_INSTANCE_COUNT = 1
COMPUTE_KINDS = ("services", "workers", "jobs")
ENV_HOLDERS = ("services", "static_sites", "functions", "workers", "jobs")


def resolve_region(region: object) -> str:
    """A region slug for a slug, a data centre (``ams3`` → ``ams``) or nothing (the default)."""
    if isinstance(region, str):
        found = catalog.find_region(region.lower())
        if found is not None:
            return found.slug
    return catalog.DEFAULT_REGION


def effective(spec: Json) -> Json:
    """A copy of a normalised spec with every running default written out (the input is untouched)."""
    out = copy.deepcopy(spec)
    out["region"] = resolve_region(out.get("region"))
    for holder in [out, *(c for kind in ENV_HOLDERS for c in out.get(kind) or [])]:
        for env in holder.get("envs") or []:
            if env.get("scope") in (None, "UNSET"):
                env["scope"] = DEFAULT_ENV_SCOPE
            env.setdefault("type", DEFAULT_ENV_TYPE)
    for kind in COMPUTE_KINDS:
        for component in out.get(kind) or []:
            component.setdefault("instance_size_slug", catalog.DEFAULT_INSTANCE_SIZE)
            if component.get("autoscaling") is None:
                component.setdefault("instance_count", DEFAULT_INSTANCE_COUNT)
            image = component.get("image")
            if isinstance(image, dict) and image.get("tag") is None and image.get("digest") is None:
                image["tag"] = DEFAULT_IMAGE_TAG
    for job in out.get("jobs") or []:
        if job.get("kind") in (None, "UNSPECIFIED"):
            job["kind"] = DEFAULT_JOB_KIND
    for site in out.get("static_sites") or []:
        site.setdefault("index_document", DEFAULT_INDEX_DOCUMENT)
    return out
