"""What runs while an app is offline (``plan``), and the progress tree an archiving deployment gets."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.domain import progress
from shoal.domain.plan import AppPlan, RunUnit, make_plan

GIT = {"git": {"repo_clone_url": "https://example.com/r.git", "branch": "main"}}


def _spec(**maintenance: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "shop",
        "services": [{"name": "web", **GIT}],
        "workers": [{"name": "queue", **GIT}],
        "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **GIT},
                 {"name": "nightly", "kind": "SCHEDULED", **GIT, "schedule": {"cron": "0 3 * * *"}}],
        "static_sites": [{"name": "docs", **GIT}],
        "databases": [{"name": "db", "engine": "PG"}],
    }
    if maintenance:
        spec["maintenance"] = maintenance
    return spec


def _plan(spec: dict[str, Any]) -> AppPlan:
    return make_plan(spec, app_id="app", deployment_id="dep")


def running(spec: dict[str, Any]) -> tuple[RunUnit, ...]:
    return _plan(spec).running


def stopped(spec: dict[str, Any]) -> tuple[RunUnit, ...]:
    return _plan(spec).stopped


def _names(parts: tuple[RunUnit, ...]) -> list[str]:
    return [p.name for p in parts]


def _paths(tree: list[progress.Step], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for step in tree:
        path = (*prefix, step["name"])
        found.extend(_paths(step["steps"], path) if step.get("steps") else [path])
    return found


@pytest.mark.parametrize(("maintenance", "is_archived", "is_offline"), [
    ({}, False, False),
    ({"enabled": False, "archive": False}, False, False),
    ({"enabled": True}, False, True),
    ({"archive": True}, True, True),  # archive implies enabled (openapi app_maintenance_spec)
    ({"enabled": False, "archive": True}, True, True),
    ({"offline_page_url": "https://example.com/down.html"}, False, False),  # a page alone changes nothing
])
def test_archive_implies_offline(maintenance: dict[str, Any], is_archived: bool, is_offline: bool) -> None:
    spec = _spec(**maintenance)
    assert _plan(spec).archived is is_archived
    assert _plan(spec).offline is is_offline


def test_maintenance_mode_keeps_everything_running() -> None:
    spec = _spec(enabled=True)
    assert _names(running(spec)) == ["web", "queue", "migrate", "nightly", "docs", "db"]
    assert stopped(spec) == ()


def test_an_archived_app_runs_only_its_databases() -> None:
    spec = _spec(archive=True)
    assert _names(running(spec)) == ["db"]
    assert _names(stopped(spec)) == ["web", "queue", "migrate", "nightly", "docs"]


def test_an_archiving_deployment_builds_nothing_and_stops_what_deploys() -> None:
    spec = _spec(archive=True)
    tree = progress.build_tree(running(spec), stopped(spec))
    assert _paths(tree) == [
        ("build", "initialize"),
        ("deploy", "initialize"),
        ("deploy", "databases", "db"),  # kept: its data must survive un-archiving
        ("deploy", "components", "web", "stop"),
        ("deploy", "components", "queue", "stop"),
        ("deploy", "components", "nightly", "stop"),
        ("deploy", "components", "docs", "stop"),
        ("deploy", "finalize"),
    ]  # no PRE_DEPLOY job, no build, no wait
    stop = progress.find(tree, ("deploy", "components", "web", "stop"))
    assert stop["message_base"] == "Stopping service: the app is archived" and stop["component_name"] == "web"
    assert progress.counters(tree)["total_steps"] == 8


def test_un_archiving_brings_the_whole_tree_back() -> None:
    spec = _spec(archive=False)
    paths = _paths(progress.build_tree(running(spec), stopped(spec)))
    assert ("build", "components", "web") in paths and ("deploy", "pre_deploy", "migrate") in paths
    assert ("deploy", "components", "web", "wait") in paths
    assert not any(path[-1] == "stop" for path in paths)


@pytest.mark.parametrize("spec", [{"name": "empty"}, {"name": "data", "databases": [{"name": "db"}]},
                                  {"name": "gone", "maintenance": {"archive": True}}])
def test_a_tree_has_no_empty_groups(spec: dict[str, Any]) -> None:
    """An empty group would count as a leaf that no step performs (it used to end in InternalError)."""
    tree = progress.build_tree(running(spec), stopped(spec))

    def empty(steps: list[progress.Step]) -> bool:
        return any(s.get("steps") == [] or empty(s.get("steps") or []) for s in steps)

    assert not empty(tree)
    assert all(path[-1] in ("initialize", "finalize", "db") for path in _paths(tree))
