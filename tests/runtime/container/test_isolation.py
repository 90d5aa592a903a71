"""shoal's isolation rules between app networks (pure)."""

from __future__ import annotations

from shoal.runtime.container import isolation


def test_isolation_rules_allow_the_app_and_drop_every_other_podman_network() -> None:
    rules = isolation.rules("podman7", isolation.tag("0123456789abcdef", "shoal-0123-app"))
    assert [(r[1], r[3], r[-1]) for r in rules] == [("podman7", "podman7", "RETURN"), ("podman7", "podman+", "DROP"),
                                                     ("podman+", "podman7", "DROP")]
    assert all("shoal:0123456789ab:shoal-0123-app" in r for r in rules)
