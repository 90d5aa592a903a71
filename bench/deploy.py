"""Benchmark deployments in simulate mode: time from ``apps.create`` to ACTIVE, alone and 100 at once.

    python bench/deploy.py [--sequential 30] [--concurrent 100]

Starts its own ``shoal serve --runtime simulate`` with no step delay, so the figures measure
the engine itself (API write, pipeline, store), not a build. Prints a table; never asserts.
Target: median < 300 ms per deployment.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live import LiveServer  # noqa: E402

UNLIMITED = str(10**9)


def spec(i: int) -> dict[str, Any]:
    return {"name": f"bench-{i:04d}-{int(time.time() * 1000) % 100000}",
            "services": [{"name": "web", "git": {"repo_clone_url": "https://example.com/app.git", "branch": "main"}}]}


def time_to_active(server: LiveServer, i: int) -> float:
    with server.http() as http:
        start = time.perf_counter()
        app = http.post("/v2/apps", json={"spec": spec(i)}).json()["app"]
        url = f"/v2/apps/{app['id']}/deployments/{app['pending_deployment']['id']}"
        while True:
            phase = http.get(url).json()["deployment"]["phase"]
            if phase in ("ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"):
                if phase != "ACTIVE":
                    raise RuntimeError(f"deployment ended {phase}")
                return time.perf_counter() - start
            time.sleep(0.005)


def row(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return f"| {label:<34} | {len(samples):>5} | {statistics.median(samples) * 1000:>8.1f} | {p90 * 1000:>8.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp) / "data", extra_args=["--rate-limit-per-minute",
                                                            UNLIMITED, "--rate-limit-per-hour", UNLIMITED]).start()
        try:
            alone = [time_to_active(server, i) for i in range(args.sequential)]
            start = time.perf_counter()
            with ThreadPoolExecutor(32) as pool:
                together = list(pool.map(lambda i: time_to_active(server, 10_000 + i), range(args.concurrent)))
            wall = time.perf_counter() - start
        finally:
            server.stop()
    print("| deployments (simulate, no step delay) | count | p50 (ms) | p90 (ms) |")
    print("| --- | ---: | ---: | ---: |")
    print(row("create → ACTIVE, one at a time", alone))
    print(row(f"create → ACTIVE, {args.concurrent} at once", together))
    print(f"\n{args.concurrent} concurrent deployments all ACTIVE in {wall:.2f} s "
          f"({args.concurrent / wall:.1f} deployments/s). Target: median < 300 ms per deployment "
          f"({'met' if statistics.median(alone) < 0.3 else 'NOT met'}).")


if __name__ == "__main__":
    main()
