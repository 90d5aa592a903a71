"""Odd inputs become problems with paths, never exceptions (the API promises 400, never 500)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal import spec
from shoal.spec import Problem, SpecInvalid


def _problems(raw: Any) -> list[Problem]:
    with pytest.raises(SpecInvalid) as caught:
        spec.check(raw)
    return list(caught.value.problems)


@pytest.mark.parametrize("raw", [None, 1, "name: x", [], True, 1.5])
def test_a_non_object_is_one_problem_for_the_whole_spec(raw: Any) -> None:
    [problem] = _problems(raw)
    assert problem.path == "" and "must be a JSON object" in problem.message


def test_single_problem_message_is_do_style() -> None:
    error = SpecInvalid([Problem("services.health_check.port", "bad")])
    assert str(error) == 'error validating app spec field "services.health_check.port": bad'
    assert error.error_id == "invalid_argument" and error.status == 400


def test_empty_object_needs_a_name() -> None:
    assert _problems({}) == [Problem("name", "is required")]


def test_huge_numbers_and_infinities() -> None:
    found = {(p.path, p.message) for p in _problems({
        "name": "app",
        "services": [{"name": "web", "github": {"repo": "a/b"}, "instance_count": 10**40, "http_port": -(10**30)}],
        "alerts": [{"rule": "DEPLOYMENT_LIVE", "value": float("inf")}],
    })}
    assert ("services[0].instance_count", "must be at most 250") in found
    assert ("services[0].http_port", "must be at least 1") in found
    assert ("alerts[0].value", "expected a finite number") in found


def test_deep_nesting_is_reported_not_raised() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": deep}
    found = _problems({"name": "app", "services": [{"name": "web", "github": {"repo": "a/b"}, "extra": deep}]})
    assert any(p.path == "services[0].extra" for p in found)


def test_unknown_keys_that_are_not_names_are_quoted_in_paths() -> None:
    found = _problems({"name": "app", "a.b": 1, "": 2})
    assert {p.path for p in found} == {'["a.b"]', '[""]'}


def test_type_errors_do_not_hide_rule_problems_elsewhere() -> None:
    found = {p.path for p in _problems({
        "name": "app",
        "services": [{"name": "web", "github": {"repo": "a/b"}, "http_port": "eighty"},
                     {"name": "web", "github": {"repo": "a/b"}}],
    })}
    assert found == {"services[0].http_port", "services[1].name"}
