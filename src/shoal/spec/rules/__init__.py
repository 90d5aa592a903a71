"""Rules beyond types: plain functions from a decoded spec to the problems they find.

Each rule reads the spec defensively (``view``), so all of them can run even when the models
rejected part of the input, and every problem found is reported at once.
"""

from __future__ import annotations

from shoal.spec.problems import Problem
from shoal.spec.rules.app import check_app
from shoal.spec.rules.compute import check_compute
from shoal.spec.rules.envs import check_envs
from shoal.spec.rules.jobs import check_jobs
from shoal.spec.rules.names import check_names
from shoal.spec.rules.observability import check_observability
from shoal.spec.rules.routing import check_routing
from shoal.spec.rules.sites import check_sites
from shoal.spec.rules.sources import check_sources
from shoal.spec.rules.view import Json

RULES = (check_names, check_sources, check_compute, check_sites, check_jobs, check_envs, check_routing,
         check_observability, check_app)


def find_problems(spec: Json) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(spec)]


__all__ = ["RULES", "find_problems"]
