"""app_cost and diff on normalised specs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from shoal import spec
from shoal.spec import SpecDiff

BASE = spec.check({
    "name": "app",
    "envs": [{"key": "SHARED", "value": "1", "scope": "RUN_TIME"}],
    "services": [{"name": "web", "github": {"repo": "a/b", "branch": "main"}, "run_command": "serve",
                  "envs": [{"key": "BUILD_FLAG", "value": "x", "scope": "BUILD_TIME"}]}],
    "workers": [{"name": "worker", "github": {"repo": "a/b"}, "instance_size_slug": "apps-d-1vcpu-1gb",
                 "autoscaling": {"min_instance_count": 2, "max_instance_count": 4}}],
    "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", "github": {"repo": "a/b"}}],
    "static_sites": [{"name": "docs", "github": {"repo": "a/docs"}, "routes": [{"path": "/docs"}]}],
    "databases": [{"name": "db", "engine": "PG"}, {"name": "big", "engine": "PG", "production": True, "cluster_name": "c"}],
})


def _changed(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """BASE after ``edit``, re-checked (so the result is normalised like BASE)."""
    new = copy.deepcopy(BASE)
    edit(new)
    return dict(spec.check(new))


def test_cost_counts_instances_static_sites_and_dev_databases_but_not_jobs() -> None:
    # web 5 + worker 2 × 34 (autoscaling floor) + docs 3 + dev db 7; the job and the cluster add nothing.
    assert spec.app_cost(BASE) == 5 + 68 + 3 + 7


def test_no_change_means_nothing_to_do() -> None:
    assert spec.diff(BASE, BASE) == SpecDiff(frozenset(), frozenset(), frozenset(), False)
    assert not spec.diff(BASE, BASE).changed


def test_source_and_build_time_env_changes_rebuild() -> None:
    branch = _changed(lambda a: a["services"][0]["github"].update(branch="dev"))
    assert spec.diff(BASE, branch).rebuild == {"web"}
    build_env = _changed(lambda a: a["services"][0]["envs"][0].update(value="y"))
    assert spec.diff(BASE, build_env).rebuild == {"web"}


def test_run_settings_and_run_time_envs_only_redeploy() -> None:
    run = _changed(lambda a: a["services"][0].update(run_command="serve --fast", instance_count=1,
                                                       instance_size_slug="apps-s-1vcpu-1gb"))
    d = spec.diff(BASE, run)
    assert d.redeploy == {"web"} and not d.rebuild
    app_env = _changed(lambda a: a["envs"][0].update(value="2"))
    assert spec.diff(BASE, app_env).redeploy == {"web", "worker", "migrate"}


def test_app_build_time_env_rebuilds_every_built_component() -> None:
    new = _changed(lambda a: a["envs"].append({"key": "NEW", "value": "1", "scope": "BUILD_TIME"}))
    assert spec.diff(BASE, new).rebuild == {"web", "worker", "migrate", "docs"}


def test_added_removed_and_routing() -> None:
    def edit(app: dict[str, Any]) -> None:
        app["workers"].pop()
        app["services"].append({"name": "api", "github": {"repo": "a/b"}})
        app["ingress"]["rules"].append({"match": {"path": {"prefix": "/api"}}, "component": {"name": "api"}})

    new = _changed(edit)
    d = spec.diff(BASE, new)
    assert d.rebuild == {"api"} and d.removed == {"worker"} and d.routing_changed


def test_database_change_is_a_redeploy() -> None:
    new = _changed(lambda a: a["databases"][0].update(version="16"))
    assert spec.diff(BASE, new).redeploy == {"db"}
