"""The corpus: every valid spec is accepted and stable; every invalid one reports exactly its problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.spec.spec_corpus import InvalidCase, invalid_cases, valid_files

from shoal import spec
from shoal.spec import SpecInvalid


@pytest.mark.parametrize("path", valid_files(), ids=lambda p: p.name)
def test_valid_spec_is_accepted_and_normalising_is_idempotent(path: Path) -> None:
    normalised = spec.check(spec.load_text(path.read_text()))
    assert spec.check(normalised) == normalised


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c.name)
def test_invalid_spec_reports_exactly_its_problems(case: InvalidCase) -> None:
    with pytest.raises(SpecInvalid) as caught:
        spec.check(case.spec)
    found = caught.value.problems
    expected_paths = {path for path, _ in case.problems}
    assert {p.path for p in found} == expected_paths, "\n".join(f"{p.path}: {p.message}" for p in found)
    for path, fragment in case.problems:
        messages = [p.message for p in found if p.path == path]
        assert any(fragment in m for m in messages), f"{path}: {fragment!r} not in {messages}"


def test_every_problem_is_named_in_the_error_message() -> None:
    for case in invalid_cases():
        with pytest.raises(SpecInvalid) as caught:
            spec.check(case.spec)
        message = str(caught.value)
        assert message.startswith("error validating app spec")
        for problem in caught.value.problems:
            assert problem.path in message and problem.message in message


def test_seed_update_example_names_the_known_defects() -> None:
    seed = next(c for c in invalid_cases() if c.name == "do-apps-update-seed")
    with pytest.raises(SpecInvalid) as caught:
        spec.check(seed.spec)
    by_path = {(p.path, p.message) for p in caught.value.problems}

    def named(path: str, fragment: str) -> bool:
        return any(p == path and fragment in m for p, m in by_path)

    assert named("static_sites[0].name", "is required")
    assert named("jobs[0]", "gitlab, image") and named("workers[0]", "gitlab, image")
    assert named("workers[0].name", "api") or named("jobs[0].name", "api")
    assert named("functions[0].name", '"api"')
    assert all(named(f"{kind}[0].log_destinations", "found 4") for kind in ("jobs", "workers", "functions"))
    assert named("jobs[0].image.registry", "DOCR") and named("workers[0].image.registry", "DOCR")
