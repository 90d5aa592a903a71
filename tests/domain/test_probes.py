"""Readiness and liveness checks as the plan makes them: DigitalOcean's defaults (reference §4.3)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.domain.plan import Probe, probe_from_spec


def test_readiness_defaults_follow_digitalocean() -> None:
    probe = probe_from_spec(None, 8080)
    assert probe == Probe(port=8080, http_path=None, initial_delay_seconds=0, period_seconds=10,
                          timeout_seconds=1, success_threshold=1, failure_threshold=9)


def test_liveness_defaults_follow_digitalocean() -> None:
    probe = probe_from_spec({"http_path": "/live"}, 8080, liveness=True)
    assert probe == Probe(port=8080, http_path="/live", initial_delay_seconds=5, period_seconds=10,
                          timeout_seconds=1, success_threshold=1, failure_threshold=18)


def test_spec_fields_override_defaults() -> None:
    spec = {"http_path": "/health", "port": 9000, "initial_delay_seconds": 3, "period_seconds": 2,
            "timeout_seconds": 4, "success_threshold": 2, "failure_threshold": 5}
    assert probe_from_spec(spec, 8080) == Probe(9000, "/health", 3, 2, 4, 2, 5)


def test_liveness_success_threshold_is_always_one() -> None:
    assert probe_from_spec({"success_threshold": 3}, 80, liveness=True).success_threshold == 1


def test_empty_http_path_means_tcp() -> None:
    assert probe_from_spec({"http_path": ""}, 80).http_path is None


@pytest.mark.parametrize("bad", [{"port": 0}, {"period_seconds": 0}, {"failure_threshold": 0},
                                 {"initial_delay_seconds": -1}])
def test_nonsense_probes_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Probe(**{"port": 80, **bad})
