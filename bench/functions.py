"""Benchmark functions components: warm activations through the ingress, the handler called in-process,
and cold starts, in one table.

    python bench/functions.py [--requests 300] [--cold 10]

A live ``shoal serve --runtime local`` deploys one app: the functions project of the e2e tests
(DigitalOcean's Python and Node.js hello samples) and, as the peer measured in the same run, a plain
Python HTTP service behind the same ingress. Rows:

* the Python handler called in-process (``main(args)``): the floor, what the function itself costs;
* ``Gateway.handle`` in this process on a warm worker: the web contract plus one /run round trip;
* a warm activation through the ingress (keep-alive client), Python and Node.js;
* the peer service through the ingress: what the ingress and one HTTP hop cost without functions;
* cold starts: a fresh gateway's first activation (spawn the worker, /init, /run), repeated;
* the first request through the ingress after the deployment went live (one sample per language).

Prints a table; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from shoal.domain.functions.web import WebRequest  # noqa: E402
from shoal.runtime.functions.gateway import Gateway, GatewayConfig  # noqa: E402
from shoal.runtime.functions.build import load_project  # noqa: E402
from shoal.runtime.local.functions import base_python  # noqa: E402
from tests.conftest import wait_deployment  # noqa: E402
from tests.e2e.apps import PY_SERVER, make_repo  # noqa: E402
from tests.e2e.functions_apps import functions_component, functions_project  # noqa: E402
from tests.live import LiveServer, free_port  # noqa: E402


def row(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return f"| {label} | {len(samples)} | {statistics.median(samples) * 1000:.3f} | {p90 * 1000:.3f} |"


def timed(fn: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def in_process(root: Path, count: int) -> list[float]:
    spec = importlib.util.spec_from_file_location("hello", root / "packages/sample/hello/hello.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sink = open("/dev/null", "w")  # noqa: SIM115 - the handler prints; keep the terminal quiet
    stdout, sys.stdout = sys.stdout, sink
    try:
        return timed(lambda: module.main({"name": "bench"}), count)
    finally:
        sys.stdout = stdout
        sink.close()


async def gateway_figures(root: Path, count: int, cold: int) -> dict[str, list[float]]:
    actions = load_project(root, {"GREETING": "hi"}).actions
    config = GatewayConfig(port=0, root=root, actions=actions, python=base_python())
    found: dict[str, list[float]] = {"warm": [], "cold python": [], "cold node": []}

    async def once(gw: Gateway, path: str) -> float:
        start = time.perf_counter()
        answer = await gw.handle(WebRequest("GET", path, "name=bench", ()))
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {answer.body[:200]!r}")
        return time.perf_counter() - start

    for _ in range(cold):
        gw = Gateway(config)
        try:
            found["cold python"].append(await once(gw, "/sample/hello"))
            found["cold node"].append(await once(gw, "/sample/hellojs"))
        finally:
            await gw.close()
    gw = Gateway(config)
    try:
        await once(gw, "/sample/hello")
        found["warm"] = [await once(gw, "/sample/hello") for _ in range(count)]
    finally:
        await gw.close()
    return found


def deploy(server: LiveServer, work: Path) -> dict[str, Any]:
    repo = make_repo(work / "repo", {"web/app.py": PY_SERVER, "web/requirements.txt": "",
                                     "web/Procfile": "web: python app.py\n", **functions_project("fns")})
    spec = {"name": f"bench-fns-{int(time.time()) % 100000}",
            "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                          "source_dir": "web", "http_port": free_port(), "routes": [{"path": "/api"}]}],
            "functions": [functions_component(str(repo))]}
    client = server.client()
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=600)
    if dep["phase"] != "ACTIVE":
        raise RuntimeError(f"deployment ended {dep['phase']}")
    return dict(client.apps.get(created["id"])["app"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--cold", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = LiveServer(data_dir=work / "data", runtime="local").start()
        try:
            app = deploy(server, work)
            base = f"http://127.0.0.1:{server.ingress_port}"
            with httpx.Client(base_url=base, headers={"host": app["live_domain"]}, timeout=30) as http:
                first = {lang: timed(lambda p=path: http.get(p).raise_for_status(), 1)  # type: ignore[misc]
                         for lang, path in (("python", "/fn/sample/hello"), ("node", "/fn/sample/hellojs"))}
                through = {label: timed(lambda p=path: http.get(p).raise_for_status(),  # type: ignore[misc]
                                        args.requests)
                           for label, path in (("python", "/fn/sample/hello?name=bench"),
                                               ("node", "/fn/sample/hellojs?name=bench"), ("peer", "/api/x"))}
            root = work / "repo" / "fns"
            local = asyncio.run(gateway_figures(root, args.requests, args.cold))
            direct = in_process(root, args.requests * 10)
        finally:
            server.stop()
    print("| functions (local runtime) | count | p50 (ms) | p90 (ms) |")
    print("| --- | ---: | ---: | ---: |")
    print(row("Python handler called in-process", direct))
    print(row("Gateway.handle in-process, warm Python worker", local["warm"]))
    print(row("warm activation through the ingress, Python hello", through["python"]))
    print(row("warm activation through the ingress, Node.js hello", through["node"]))
    print(row("peer: Python service through the ingress", through["peer"]))
    print(row("cold start: fresh worker, Python (spawn, /init, /run)", local["cold python"]))
    print(row("cold start: fresh worker, Node.js (spawn, /init, /run)", local["cold node"]))
    print(row("first request after deploy through the ingress, Python", first["python"]))
    print(row("first request after deploy through the ingress, Node.js", first["node"]))


if __name__ == "__main__":
    main()
