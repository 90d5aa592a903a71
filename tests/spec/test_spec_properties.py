"""Properties of check(): total over any input, idempotent over valid specs."""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.spec.spec_corpus import valid_files
from tests.spec.spec_strategies import app_specs, json_values, mutated

from shoal import spec
from shoal.spec import SpecInvalid
from shoal.spec.check import check_strict

_SEGMENT = r"(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\[\"([^\"\\]|\\.)*\"\])"
PATH_RE = re.compile(rf"^([A-Za-z_][A-Za-z0-9_]*)?{_SEGMENT}*$")
CORPUS = [spec.load_text(path.read_text()) for path in valid_files()]
CHECKED = [spec.check(raw) for raw in CORPUS]
# SPEC_EXAMPLES=5000 for a long bug hunt; the default keeps the suite quick.
FAST = settings(max_examples=int(os.environ.get("SPEC_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _problems_or_valid(raw: Any) -> dict[str, Any] | None:
    """Run check without its safety net: any exception but SpecInvalid is a bug the test reports."""
    try:
        return check_strict(raw)
    except SpecInvalid as error:
        assert error.problems, "SpecInvalid without problems"
        for problem in error.problems:
            assert isinstance(problem.path, str) and isinstance(problem.message, str) and problem.message
        return None


@FAST
@given(app_specs())
def test_generated_specs_are_valid_and_normalising_is_idempotent(raw: dict[str, Any]) -> None:
    once = spec.check(raw)
    assert spec.check(once) == once
    assert spec.app_cost(once) >= 0


@FAST
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_spec_invalid(raw: Any) -> None:
    _problems_or_valid(raw)


@FAST
@given(st.dictionaries(st.sampled_from(["name", "services", "workers", "jobs", "static_sites", "functions",
                                        "databases", "domains", "envs", "ingress", "region", "alerts"]),
                       json_values, max_size=6))
def test_arbitrary_top_level_values_never_crash(raw: dict[str, Any]) -> None:
    _problems_or_valid(raw)


@FAST
@given(st.data())
def test_mutated_valid_specs_are_rejected_with_paths_or_accepted_stably(data: st.DataObject) -> None:
    base: dict[str, Any] = data.draw(st.sampled_from([*CORPUS, *CHECKED]))
    raw = data.draw(mutated(base))
    try:
        result = check_strict(raw)
    except SpecInvalid as error:
        assert error.problems
        assert all(PATH_RE.match(p.path) for p in error.problems), [p.path for p in error.problems]
        return
    assert spec.check(result) == result


@FAST
@given(app_specs(), st.data())
def test_mutated_generated_specs_never_crash(raw: dict[str, Any], data: st.DataObject) -> None:
    _problems_or_valid(data.draw(mutated(raw)))
