"""Benchmark the live API: start ``shoal serve``, fill it with apps, measure reads over HTTPS.

    python bench/api.py [--seconds 10] [--connections 16] [--apps 1000] [--loadgen auto|wrk|python]

Measures requests/s and p50/p99 latency of ``GET /v2/apps/{id}`` (random ids) and
``GET /v2/apps?per_page=200`` over keep-alive HTTPS connections, then prints a table and
whether the target (single get: >= 1,500 req/s at p99 < 10 ms) is met.

The load generator must not be what limits the numbers on a small (2-core) box, so ``wrk``
is used when it is on PATH (``apt-get install wrk``); otherwise a multi-process asyncio
client with a hand-rolled HTTP/1.1 loop stands in. The rate limiter is lifted with large
``--rate-limit-*`` values, the server runs ``--runtime simulate`` so a thousand creates start
no builds, and measuring waits until those deployments have settled, so the numbers are the
API's alone. Benchmarks print; they never pass or fail a test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS = 1500.0
TARGET_P99_MS = 10.0
UNLIMITED = str(10**9)
SETTLED_PHASES = frozenset({"ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"})


class BenchError(Exception):
    """The benchmark cannot go on; main prints why after stopping the server."""


@dataclass(frozen=True)
class Server:
    base_url: str
    host: str
    port: int
    token: str
    ca_cert: Path
    process: subprocess.Popen[bytes]
    log: Path


@dataclass(frozen=True)
class Result:
    operation: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# -- the server under test -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, extra_args: Sequence[str]) -> Server:
    token = "dop_v1_" + secrets.token_hex(32)
    port, ingress_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "shoal", "serve", "--data-dir", str(data_dir),
        "--api-listen", f"127.0.0.1:{port}", "--ingress-listen", f"127.0.0.1:{ingress_port}",
        "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED, *extra_args,
    ]  # fmt: skip
    env = dict(os.environ, SHOAL_BOOTSTRAP_TOKEN=token)
    # Work from a plain checkout as well as from an installed shoal.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")]))
    log = data_dir.parent / "server.log"
    with open(log, "wb") as sink:
        # Its own session, so stopping it also stops anything it spawned.
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(f"https://127.0.0.1:{port}", "127.0.0.1", port, token, data_dir / "tls" / "ca.pem", process, log)


def wait_ready(server: Server, timeout: float) -> None:
    """Poll ``GET /v2/account`` until it answers 200 (the CA file appears during startup)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"shoal serve exited with {server.process.returncode}:\n{tail(server.log)}")
        if server.ca_cert.exists():
            try:
                response = httpx.get(
                    f"{server.base_url}/v2/account", headers=auth(server), verify=client_context(server), timeout=2
                )
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except (httpx.HTTPError, ssl.SSLError) as exc:
                last = repr(exc)
        time.sleep(0.2)
    raise BenchError(f"shoal serve not ready after {timeout:.0f} s ({last}):\n{tail(server.log)}")


def stop_server(server: Server) -> None:
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def client_context(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_cert))


# -- setup -----------------------------------------------------------------------------------


def app_body(index: int) -> dict[str, object]:
    repo = {"repo_clone_url": "https://example.com/x.git", "branch": "main"}
    return {"spec": {"name": f"bench-{index:04d}", "services": [{"name": "web", "git": repo}]}}


async def create_apps(server: Server, count: int, concurrency: int = 16) -> list[str]:
    """Create ``count`` apps through a pool of clients working one shared queue; their ids."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(1, count + 1):
        queue.put_nowait(index)
    ids: list[str] = []

    async def worker() -> None:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=auth(server), verify=client_context(server), timeout=30
        ) as client:
            while not queue.empty():
                index = queue.get_nowait()
                response = await client.post("/v2/apps", json=app_body(index))
                if response.status_code not in (200, 201):
                    raise BenchError(f"creating app {index}: HTTP {response.status_code} {response.text[:300]}")
                ids.append(response.json()["app"]["id"])

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except* (BenchError, httpx.HTTPError) as failed:
        # One clear reason rather than a group of sixteen similar ones.
        raise BenchError(str(failed.exceptions[0])) from None
    return ids


def unsettled(server: Server) -> int:
    """How many apps still have a deployment on its way (pending or in progress)."""
    busy, page = 0, 1
    with httpx.Client(base_url=server.base_url, headers=auth(server), verify=client_context(server), timeout=30) as http:
        while True:
            body = http.get("/v2/apps", params={"per_page": 200, "page": page}).raise_for_status().json()
            for app in body.get("apps") or []:
                deployments = (app.get("pending_deployment"), app.get("in_progress_deployment"))
                busy += any(d and d.get("phase") not in SETTLED_PHASES for d in deployments)
            if not (body.get("links") or {}).get("pages", {}).get("next"):
                return busy
            page += 1


def wait_settled(server: Server, timeout: float) -> float:
    """Wait for the deployments the creates started, so the deployer does not share the CPU
    with the measurement; returns the seconds waited."""
    started = time.perf_counter()
    while (busy := unsettled(server)) and time.perf_counter() - started < timeout:
        time.sleep(1)
    if busy:
        print(f"warning: {busy} apps still deploying after {timeout:.0f} s; numbers include the deployer's load")
    return time.perf_counter() - started


# -- wrk -------------------------------------------------------------------------------------

# Threads get a distinct starting point in the path list; done() prints one parseable line
# (latencies in microseconds) so nothing depends on wrk's human-readable units.
WRK_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
local paths = {%(paths)s}
local counter = 0
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) counter = (id or 0) * 7919 end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SHOAL_RESULT %%f %%f %%f %%f %%f\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""
_RESULT_RE = re.compile(r"^SHOAL_RESULT ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", re.MULTILINE)


def run_wrk(server: Server, paths: Sequence[str], seconds: float, connections: int, workdir: Path,
            verbose: bool) -> tuple[float, float, float, int]:  # fmt: skip
    """(req/s, p50 ms, p99 ms, errors) from one wrk run over ``paths``."""
    script = workdir / "bench.lua"
    quoted = ",".join(f'"{path}"' for path in paths)
    script.write_text(WRK_SCRIPT % {"token": server.token, "paths": quoted})
    threads = max(1, min(2, connections, os.cpu_count() or 1))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
               "--latency", "-s", str(script), server.base_url]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if verbose:
        print(completed.stdout, completed.stderr, sep="\n")
    found = _RESULT_RE.search(completed.stdout)
    if completed.returncode != 0 or found is None:
        raise BenchError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    requests, duration_us, p50_us, p99_us, errors = (float(value) for value in found.groups())
    return requests / (duration_us / 1e6), p50_us / 1000, p99_us / 1000, int(errors)


# -- the Python fallback ---------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    host: str
    port: int
    ca_cert: str
    token: str
    paths: tuple[str, ...]
    connections: int
    seconds: float
    seed: int


@dataclass
class Tally:
    latencies: list[float]
    errors: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; (status, whether the server will close the connection)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head[9:12])
    headers = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
    if headers.get("transfer-encoding", "").strip() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # no trailers are expected; this is the final CRLF
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").strip() == "close"


async def _connection(job: Job, context: ssl.SSLContext, requests: list[bytes], deadline: float,
                      tally: Tally, offset: int) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(job.host, job.port, ssl=context)
    try:
        while time.perf_counter() < deadline:
            offset += 1
            started = time.perf_counter()
            writer.write(requests[offset % len(requests)])
            status, closing = await _read_response(reader)
            tally.latencies.append(time.perf_counter() - started)
            tally.errors += status >= 400
            if closing:
                writer.close()
                reader, writer = await asyncio.open_connection(job.host, job.port, ssl=context)
    finally:
        writer.close()


async def _drive(job: Job) -> tuple[list[float], int, float]:
    context = ssl.create_default_context(cafile=job.ca_cert)
    auth_line = f"Authorization: Bearer {job.token}\r\n"
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\n{auth_line}Accept: application/json\r\n\r\n".encode()
        for path in job.paths
    ]
    tally = Tally(latencies=[])
    rng = random.Random(job.seed)
    started = time.perf_counter()
    deadline = started + job.seconds
    async with asyncio.TaskGroup() as group:
        for _ in range(job.connections):
            group.create_task(_connection(job, context, requests, deadline, tally, rng.randrange(len(requests))))
    return tally.latencies, tally.errors, time.perf_counter() - started


def _drive_in_process(job: Job) -> tuple[list[float], int, float]:
    return asyncio.run(_drive(job))


def run_python(server: Server, paths: Sequence[str], seconds: float, connections: int,
               processes: int) -> tuple[float, float, float, int]:  # fmt: skip
    """(req/s, p50 ms, p99 ms, errors), spreading connections over several processes."""
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    jobs = [
        Job(server.host, server.port, str(server.ca_cert), server.token, tuple(paths), share, seconds, seed)
        for seed, share in enumerate(shares)
    ]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        outcomes = list(pool.map(_drive_in_process, jobs))
    latencies = sorted(value for values, _, _ in outcomes for value in values)
    if not latencies:
        raise BenchError("the Python load generator completed no requests")
    rps = sum(len(values) / elapsed for values, _, elapsed in outcomes)
    errors = sum(errors for _, errors, _ in outcomes)
    return rps, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000, errors


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


# -- the run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark shoal's API over HTTPS.")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement time per operation")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured warm-up before the first run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--apps", type=int, default=1000, help="apps to create before measuring")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="Python load generator processes")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="wait for the apps' deployments")
    parser.add_argument("--runtime", default="simulate", help="`shoal serve --runtime` ('' for the server default)")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra argument for `shoal serve`")
    parser.add_argument("--verbose", action="store_true", help="show the load generator's own output")
    return parser.parse_args(argv)


def measure(server: Server, args: argparse.Namespace, loadgen: str, paths: Sequence[str], seconds: float,
            workdir: Path) -> tuple[float, float, float, int]:  # fmt: skip
    if loadgen == "wrk":
        return run_wrk(server, paths, seconds, args.connections, workdir, args.verbose)
    return run_python(server, paths, seconds, args.connections, args.processes)


def print_table(results: Sequence[Result], loadgen: str, args: argparse.Namespace) -> None:
    print(f"\nshoal API benchmark: {args.apps:,} apps, load from {loadgen}, {args.seconds:g} s per operation\n")
    print(f"{'operation':<28} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(f"{r.operation:<28} {r.connections:>5} {r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")
    single = results[0]
    met = single.rps >= TARGET_RPS and single.p99_ms < TARGET_P99_MS and single.errors == 0
    print(f"\ntarget: {single.operation} >= {TARGET_RPS:,.0f} req/s at p99 < {TARGET_P99_MS:g} ms: "
          f"{'met' if met else 'NOT met'}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loadgen = args.loadgen if args.loadgen != "auto" else ("wrk" if shutil.which("wrk") else "python")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        workdir = Path(tmp)
        runtime = ["--runtime", args.runtime] if args.runtime else []
        server = start_server(workdir / "data", [*runtime, *args.serve_arg])
        try:
            results = run(server, args, loadgen, workdir)
        except BenchError as exc:
            print(f"bench/api.py: {exc}", file=sys.stderr)
            return 1
        finally:
            stop_server(server)
    print_table(results, loadgen, args)
    return 0


def run(server: Server, args: argparse.Namespace, loadgen: str, workdir: Path) -> list[Result]:
    wait_ready(server, args.startup_timeout)
    started = time.perf_counter()
    ids = asyncio.run(create_apps(server, args.apps))
    elapsed = time.perf_counter() - started
    print(f"created {len(ids):,} apps in {elapsed:.1f} s ({len(ids) / elapsed:.0f}/s)")
    print(f"their deployments settled in {wait_settled(server, args.settle_timeout):.1f} s")
    singles = [f"/v2/apps/{app_id}" for app_id in random.sample(ids, len(ids))]
    if args.warmup > 0:
        measure(server, args, loadgen, singles, args.warmup, workdir)
    operations = [("GET /v2/apps/{id}", singles), ("GET /v2/apps?per_page=200", ["/v2/apps?per_page=200"])]
    return [
        Result(name, args.connections, *measure(server, args, loadgen, paths, args.seconds, workdir))
        for name, paths in operations
    ]


if __name__ == "__main__":
    sys.exit(main())
