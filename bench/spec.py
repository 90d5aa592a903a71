"""How long check() takes on a 50-component spec (target: under 5 ms). Prints a table; asserts nothing.

Run: PYTHONPATH=src python bench/spec.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from shoal import spec


def fifty_components() -> dict[str, Any]:
    services = [
        {
            "name": f"svc-{i}",
            "github": {"repo": "acme/app", "branch": "main"},
            "instance_size_slug": "apps-d-1vcpu-1gb",
            "instance_count": 2,
            "routes": [{"path": f"/svc-{i}"}],
            "health_check": {"http_path": "/health"},
            "envs": [
                {"key": "DATABASE_URL", "value": "${db.DATABASE_URL}", "scope": "RUN_TIME"},
                {"key": "SELF", "value": "${_self.PUBLIC_URL}"},
                {"key": "TOKEN", "value": "secret", "type": "SECRET"},
            ],
        }
        for i in range(20)
    ]
    workers = [{"name": f"wrk-{i}", "image": {"registry_type": "DOCR", "repository": "w", "tag": "v1"}} for i in range(10)]
    jobs = [
        {"name": f"job-{i}", "kind": "SCHEDULED", "schedule": {"cron": "*/5 * * * *", "time_zone": "UTC"},
         "git": {"repo_clone_url": "https://example.com/a.git", "branch": "main"}}
        for i in range(10)
    ]
    sites = [{"name": f"site-{i}", "github": {"repo": "acme/site"}, "routes": [{"path": f"/site-{i}"}]} for i in range(9)]
    return {"name": "bench", "region": "ams3", "services": services, "workers": workers, "jobs": jobs,
            "static_sites": sites, "databases": [{"name": "db", "engine": "PG"}],
            "domains": [{"domain": "bench.example.com", "type": "PRIMARY"}]}


def median_ms(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    raw = fifty_components()
    normalised = spec.check(raw)
    invalid = {**raw, "services": [{**s, "instance_count": 0} for s in raw["services"]]}

    def rejected() -> None:
        try:
            spec.check(invalid)
        except spec.SpecInvalid:
            pass

    rows = [
        ("check(): 50 components, valid", median_ms(lambda: spec.check(raw), 300)),
        ("check(): re-check normalised", median_ms(lambda: spec.check(normalised), 300)),
        ("check(): 50 components, 20 problems", median_ms(rejected, 300)),
        ("diff(): normalised vs itself", median_ms(lambda: spec.diff(normalised, normalised), 300)),
    ]
    print(f"{'case':<40} {'median ms':>10}")
    for label, value in rows:
        print(f"{label:<40} {value:>10.3f}")
    print(f"{'target for check()':<40} {5.0:>10.3f}")


if __name__ == "__main__":
    main()
