"""The functions gateway with real Python and Node.js workers: warm reuse, limits, OpenWhisk's answers,
CORS defaults, and nothing left running after it stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shoal.domain.functions.web import WebAnswer, WebRequest
from shoal.runtime.functions.gateway import CONFIG_VARIABLE, Gateway, GatewayConfig
from shoal.runtime.functions.build import load_project
from shoal.runtime.local.functions import base_python, read_activations
from tests.conftest import wait_for
from tests.live import free_port
from tests.runtime.aio import run_async

FILES = {
    "project.yml": textwrap.dedent("""
        packages:
          - name: t
            actions:
              - name: hog
                limits: {memory: 128}
              - name: hogjs
                limits: {memory: 128}
              - name: heapjs
                limits: {memory: 128, timeout: 60000}
              - name: nap
                limits: {timeout: 5000}
              - name: locked
                webSecure: open-sesame
              - name: custom
                annotations: {web-custom-options: true}
              - name: raw
                web: raw
    """),
    "packages/t/pid.py": "import os\ndef main():\n    return {'body': {'pid': os.getpid()}}\n",
    "packages/t/hog.py": "def main(args):\n    block = bytearray(300 * 1024 * 1024)\n    return {'body': len(block)}\n",
    "packages/t/hogjs.js": "exports.main = () => ({body: Buffer.alloc(300 * 1024 * 1024, 1).length})\n",
    "packages/t/heapjs.js": "exports.main = () => {\n  const kept = [];\n"
                            "  for (;;) kept.push(new Array(100000).fill({x: kept.length}));\n};\n",
    "packages/t/nap.py": "import time\ndef main(args):\n    time.sleep(float(args['s']))\n"
                         "    return {'body': 'rested'}\n",
    "packages/t/locked.py": "def main(args):\n    return {'body': 'in'}\n",
    "packages/t/custom.py": "def main(args):\n    return {'body': args['__ow_method'], 'headers': {'allow': 'GET'}}\n",
    "packages/t/raw.py": "def main(args):\n    return {'body': {'q': args['__ow_query'], 'b': args['__ow_body']}}\n",
    "packages/t/broken.py": "def main(args)\n    return {}\n",
    "packages/t/fails.py": "def main(args):\n    raise RuntimeError('boom')\n",
    "packages/t/teapot.py": "def main(args):\n    return {'error': {'statusCode': 418, 'body': 'short and stout'}}\n",
    "packages/t/later.js": "exports.main = async (args, ctx) => {\n"
                           "  await new Promise((r) => setTimeout(r, 10));\n"
                           "  return {body: {id: ctx.activationId, left: ctx.getRemainingTimeInMillis() > 0}};\n};\n",
    "packages/t/esm/main.mjs": "export function main(args) { return {body: 'esm ' + (args.name || '')}; }\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def gateway(root: Path, **extra: Any) -> Gateway:
    actions = load_project(root, {}).actions
    return Gateway(GatewayConfig(port=0, root=root, actions=actions, python=base_python(), **extra))


async def call(gw: Gateway, path: str, method: str = "GET", query: str = "", body: bytes = b"",
               headers: tuple[tuple[str, str], ...] = ()) -> WebAnswer:
    return await gw.handle(WebRequest(method, path, query, headers, body))


def data(answer: WebAnswer) -> Any:
    return json.loads(answer.body)


@run_async
async def test_a_worker_is_started_once_and_reused_while_warm(project: Path) -> None:
    gw = gateway(project)
    try:
        pids = {data(await call(gw, "/t/pid"))["pid"] for _ in range(5)}
        pool = gw.pools[("t", "pid")]
        assert len(pids) == 1 and pool.cold_starts == 1
        # Concurrent activations of one action get workers of their own, up to max_workers.
        naps = await asyncio.gather(*(call(gw, "/t/nap", query="s=0.3") for _ in range(6)))
        assert [a.body for a in naps] == [b"rested"] * 6
        assert 2 <= gw.pools[("t", "nap")].cold_starts <= gw.config.max_workers
        # Idle workers are stopped once they have been idle for idle_seconds.
        workers = [w.pid for w in pool.workers]
        await pool.reap(time.monotonic() + gw.config.idle_seconds + 1)
        assert pool.workers == [] and not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                              for p in workers)
    finally:
        await gw.close()


@run_async
async def test_timeout_and_memory_limits_answer_400_and_the_next_activation_gets_a_fresh_worker(
        project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    gw = gateway(project)
    try:
        first = (await call(gw, "/t/nap", query="s=0")).body
        late = await call(gw, "/t/nap", query="s=30")
        assert late.status == 400 and data(late)["error"] == "There was an error processing your request."
        for hog in ("/t/hog", "/t/hogjs", "/t/heapjs"):
            assert (await call(gw, hog)).status == 400
        assert (await call(gw, "/t/nap", query="s=0")).body == b"rested"
        assert gw.pools[("t", "nap")].cold_starts == 2
        assert first == b"rested"
    finally:
        await gw.close()
    err = capfd.readouterr().err
    assert f"t/nap activation {data(late)['code']}: The action exceeded its time limits of 5000 milliseconds." in err
    assert err.count("The action exhausted its memory and was aborted.") == 3


@run_async
async def test_failures_are_openwhisks_answers(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    gw = gateway(project)
    try:
        broken, fails = await call(gw, "/t/broken"), await call(gw, "/t/fails")
        assert broken.status == fails.status == 400
        teapot = await call(gw, "/t/teapot")
        assert (teapot.status, teapot.body) == (418, b"short and stout")
        assert (await call(gw, "/t/locked")).status == 401
        assert (await call(gw, "/t/locked", headers=(("X-Require-Whisk-Auth", "open-sesame"),))).body == b"in"
        assert (await call(gw, "/t/missing")).status == 404
    finally:
        await gw.close()
    err = capfd.readouterr().err
    assert "SyntaxError" in err and "RuntimeError: boom" in err  # the tracebacks are in the logs
    assert "An error has occurred (see logs for details): boom" in err


@run_async
async def test_raw_node_esm_and_the_context(project: Path) -> None:
    gw = gateway(project)
    try:
        raw = data(await call(gw, "/t/raw", "POST", "a=1&b", b"text", (("content-type", "text/plain"),)))
        assert raw == {"q": "a=1&b", "b": "text"}
        later = await call(gw, "/t/later")
        assert data(later) == {"id": dict(later.headers)["x-openwhisk-activation-id"], "left": True}
        assert (await call(gw, "/t/esm", query="name=m")).body == b"esm m"
    finally:
        await gw.close()


@run_async
async def test_openwhisks_default_cors_unless_the_component_or_the_action_has_its_own(project: Path) -> None:
    gw = gateway(project)
    own = gateway(project, default_cors=False)
    try:
        preflight = await call(gw, "/t/pid", "OPTIONS", headers=(("access-control-request-headers", "X-A"),))
        assert preflight.status == 200 and dict(preflight.headers)["access-control-allow-headers"] == "X-A"
        assert dict((await call(gw, "/t/pid")).headers)["access-control-allow-origin"] == "*"
        custom = await call(gw, "/t/custom", "OPTIONS")
        assert custom.body == b"options" and "access-control-allow-origin" not in dict(custom.headers)
        plain = await call(own, "/t/pid")
        assert plain.status == 200 and "access-control-allow-origin" not in dict(plain.headers)
    finally:
        await gw.close()
        await own.close()


@run_async
async def test_each_activation_is_counted_with_its_run_and_wait_time_errors_and_gb_seconds(project: Path) -> None:
    gw = gateway(project)
    try:
        for query in ("s=0.2", "s=0.2", "s=0"):
            assert (await call(gw, "/t/nap", query=query)).status == 200
        assert (await call(gw, "/t/fails")).status == 400  # a developer error
        assert (await call(gw, "/t/teapot")).status == 418  # an application error
        assert (await call(gw, "/t/missing")).status == 404  # no activation
        assert (await call(gw, "/t/locked")).status == 401  # nor this
        done = gw.activations
    finally:
        await gw.close()
    assert (done.count, done.errors) == (5, 2)
    assert done.duration_ms >= 400  # two naps of 0.2 s; the cold starts are waiting, not running
    assert done.wait_ms > 0 and done.source
    memory_gb = 256 / 1024  # the default limit
    assert done.gb_seconds == pytest.approx(memory_gb * done.duration_ms / 1000)


def test_the_gateway_process_serves_http_and_takes_its_workers_with_it(project: Path) -> None:
    port = free_port()
    actions = load_project(project, {}).actions
    config = GatewayConfig(port=port, root=project, actions=actions, python=base_python(), stats_token="s3cret")
    process = subprocess.Popen([sys.executable, "-m", "shoal.runtime.functions.gateway"], cwd=project,
                               env={"PATH": os.environ["PATH"], CONFIG_VARIABLE: config.to_json()},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answer() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/t/pid", timeout=10)
            except httpx.HTTPError:
                return None

        first = wait_for(answer, timeout=30)
        assert first.status_code == 200
        worker = first.json()["pid"]
        assert psutil.Process(worker).ppid() == process.pid
        big = httpx.post(f"http://127.0.0.1:{port}/t/pid", content=b"x" * (1024 * 1024 + 1), timeout=10)
        assert big.status_code == 413
        totals = read_activations(port, "s3cret")  # what shoal reads for the FUNCTIONS_* alert rules
        assert totals is not None and totals.count == 1 and totals.errors == 0
        assert httpx.get(f"http://127.0.0.1:{port}/_shoal/activations", timeout=10).status_code == 404
        guessed = httpx.get(f"http://127.0.0.1:{port}/_shoal/activations", headers={"x-shoal-stats": "guess"})
        assert guessed.status_code == 404 and "count" not in guessed.text  # only with the gateway's token
        os.killpg(process.pid, signal.SIGKILL)  # what the supervisor does past the grace period
        process.wait(10)
        wait_for(lambda: not psutil.pid_exists(worker) or psutil.Process(worker).status() == "zombie", timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.stdout is not None
        output = process.stdout.read().decode()
        process.stdout.close()
    assert "functions gateway listening on" in output and "/t/pid" in output


def test_the_gateway_stops_with_its_workers_when_the_process_that_started_it_dies(project: Path) -> None:
    """shoal killed with -9: the gateway notices it was orphaned and stops, taking its workers along."""
    port = free_port()
    config = GatewayConfig(port=port, root=project, actions=load_project(project, {}).actions, python=base_python())
    launcher = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\n"
                               "p = subprocess.Popen([sys.executable, '-m', 'shoal.runtime.functions.gateway'])\n"
                               "print(p.pid, flush=True)\ntime.sleep(600)\n"],
        env={"PATH": os.environ["PATH"], CONFIG_VARIABLE: config.to_json()}, stdout=subprocess.PIPE,
        start_new_session=True)
    assert launcher.stdout is not None
    gateway_pid = int(launcher.stdout.readline())
    try:
        def answer() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/t/pid", timeout=10)
            except httpx.HTTPError:
                return None

        worker = wait_for(answer, timeout=30).json()["pid"]
        launcher.kill()
        launcher.wait()

        def gone(pid: int) -> bool:
            return not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"

        wait_for(lambda: gone(gateway_pid) and gone(worker), timeout=20)
    finally:
        launcher.stdout.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
