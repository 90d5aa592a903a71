"""Benchmark log forwarding: lines/s to local receivers, and what forwarding adds to the ingress.

    python bench/forwarding.py [--lines 100000] [--rounds 3] [--duration 6] [--no-ingress]

Part 1, throughput: shoal's forwarder (in this process) sends ``--lines`` lines to a receiver in its
own process on loopback — Papertrail's TLS syslog, a Datadog-shaped HTTPS intake (gzip JSON), an
OpenSearch-shaped ``_bulk`` endpoint and a Logtail-shaped one — timed from the first line handed
over to the receiver counting the last. The peer measured in the same run is the link itself:
the same RFC 5424 lines, pre-formatted, written straight down one TLS connection.

Part 2, the ingress: one ``shoal serve --runtime local`` runs the same app twice, each printing
one log line per request; one app forwards its lines to Papertrail and Datadog receivers, the
other has no log destinations. wrk drives each through the ingress at the same paced rate and
then saturated, in interleaved rounds (median reported), with shoal's CPU per request. Prints
tables; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.apps import make_repo  # noqa: E402
from tests.live import LiveServer  # noqa: E402
from tests.receivers import ReceiverCa, free_port  # noqa: E402

KINDS = ("raw-tls", "papertrail", "datadog", "open_search", "logtail")

APP = '''
import os, sys, uvicorn

BODY = b"hello from the bench app\\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    sys.stdout.write("GET " + scope["path"] + " 200\\n")
    sys.stdout.flush()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False,
            lifespan="off", http="httptools", loop="uvloop")
'''


# -- the receiver process ---------------------------------------------------------------------------

def receive(kind: str, port: int, cert: str, key: str, expect: int) -> None:
    """Count what arrives; print ``done`` once ``expect`` records have (0: count forever, quietly)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen = 0

    def count(n: int) -> None:
        nonlocal seen
        before, seen = seen, seen + n
        if expect and before < expect <= seen:
            print("done", flush=True)

    if kind in ("raw-tls", "papertrail"):
        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(1 << 16):
                    count(data.count(b"\n"))
            except (ConnectionError, ssl.SSLError):
                pass  # the sender went away: what it sent has been counted

        async def serve() -> None:
            server = await asyncio.start_server(client, "127.0.0.1", port, ssl=context)
            print("ready", flush=True)
            await server.serve_forever()

        asyncio.run(serve())
        return
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if (b"content-encoding", b"gzip") in scope["headers"]:
            body = gzip.decompress(body)
        count(body.count(b"\n") // 2 if scope["path"].endswith("_bulk") else body.count(b'"message":'))
        answer = b'{"errors":false,"items":[]}' if scope["path"].endswith("_bulk") else b"{}"
        await send({"type": "http.response.start", "status": 200 if scope["path"].endswith("_bulk") else 202,
                    "headers": [(b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning",
                access_log=False, lifespan="off", http="httptools")


def start_receiver(kind: str, ca: ReceiverCa, expect: int) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--receive", kind, "--port", str(port), "--cert",
                                str(ca.cert_path), "--key", str(ca.key_path), "--expect", str(expect)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # uvicorn prints "ready" before it listens
        try:
            with ssl.create_default_context(cafile=str(ca.ca_path)).wrap_socket(
                    __import__("socket").create_connection(("127.0.0.1", port), 1), server_hostname="127.0.0.1"):
                return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{kind} receiver did not listen")


# -- part 1: throughput ------------------------------------------------------------------------------

def throughput(kind: str, lines: int, ca: ReceiverCa) -> float:
    """Lines/s from the first line handed over to the receiver counting the last."""
    from shoal.domain.forwarding import Destination, Record
    from shoal.observability import Forwarder, SenderFactory
    from shoal.observability.tls import ClientContexts
    from shoal.observability.wire import syslog_line

    receiver, port = start_receiver(kind, ca, lines)
    now = datetime.now(UTC)
    records = [Record("app-id", "bench", "dep-id", "web", "RUN", now,
                      f"GET /items/{i} 200 0.8ms user-agent=bench request-id={i:08d}") for i in range(lines)]
    endpoints = {"papertrail": f"127.0.0.1:{port}", "datadog": f"https://127.0.0.1:{port}",
                 "open_search": f"https://127.0.0.1:{port}", "logtail": ""}

    async def run() -> float:
        started = time.perf_counter()
        if kind == "raw-tls":
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ClientContexts(ca.ca_path).get(),
                                                      server_hostname="127.0.0.1")
            for i in range(0, lines, 500):
                writer.write(b"".join(syslog_line(r) for r in records[i:i + 500]))
                await writer.drain()
        else:
            stop = asyncio.Event()
            factory = SenderFactory(ClientContexts(ca.ca_path), f"https://127.0.0.1:{port}/")
            forwarder = Forwarder(factory, limit=lines)
            task = asyncio.create_task(forwarder.run(stop))
            dest = Destination("app-id", "web", "bench", kind, endpoint=endpoints[kind], api_key="k", token="t")
            for i in range(0, lines, 1000):  # as the engine hands them over: a flush at a time
                forwarder.forward(dest, records[i:i + 1000])
                await asyncio.sleep(0)
        assert receiver.stdout is not None
        await asyncio.to_thread(receiver.stdout.readline)  # "done"
        elapsed = time.perf_counter() - started
        if kind != "raw-tls":
            stop.set()
            await task
        else:
            writer.close()
        return elapsed

    try:
        return lines / asyncio.run(run())
    finally:
        receiver.terminate()
        receiver.wait()


# -- part 2: the ingress with forwarding on and off -------------------------------------------------

def wrk(url: str, host: str, duration: int, connections: int, pause_ms: int, tmp: Path) -> tuple[float, float, float]:
    import re

    script = tmp / "host.lua"
    script.write_text(f'wrk.headers["Host"] = "{host}"\n' + (f"function delay() return {pause_ms} end\n"
                                                              if pause_ms else ""))
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(pattern: str) -> float:
        number, unit = re.search(pattern, out, re.MULTILINE).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, ms(r"^\s+50%\s+([\d.]+)(us|ms|s)"), ms(r"^\s+99%\s+([\d.]+)(us|ms|s)")


def deploy(server: LiveServer, name: str, repo: Path, destinations: list[dict[str, Any]]) -> str:
    client = server.client()
    app = client.apps.create(body={"spec": {"name": name, "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "run_command": "python3 app.py",
        "log_destinations": destinations}]}})["app"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        phase = client.apps.get_deployment(app["id"], app["pending_deployment"]["id"])["deployment"]["phase"]
        if phase == "ACTIVE":
            return str(client.apps.get(app["id"])["app"]["live_domain"])
        if phase in ("ERROR", "CANCELED", "SUPERSEDED"):
            raise RuntimeError(f"{name} ended {phase}:\n{server.log()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become ACTIVE")


def ingress(args: argparse.Namespace, ca: ReceiverCa, tmp: Path) -> None:
    import psutil

    papertrail, pt_port = start_receiver("papertrail", ca, 0)
    datadog, dd_port = start_receiver("datadog", ca, 0)
    server = LiveServer(data_dir=tmp / "data", runtime="local", extra_args=["--log-forward-ca", str(ca.ca_path)])
    try:
        server.start()
        repo = make_repo(tmp / "repo", {"app.py": APP})
        hosts = {"off": deploy(server, "bench-quiet", repo, []),
                 "on": deploy(server, "bench-forwarded", repo, [
                     {"name": "pt", "papertrail": {"endpoint": f"127.0.0.1:{pt_port}"}},
                     {"name": "dd", "datadog": {"endpoint": f"https://127.0.0.1:{dd_port}", "api_key": "k"}}])}
        url = f"http://127.0.0.1:{server.ingress_port}/"
        shoal = psutil.Process(server.process.pid if server.process else 0)
        for host in hosts.values():
            wrk(url, host, 2, args.connections, 0, tmp)
        for title, pause_ms in ((f"paced: each connection waits {args.pause_ms} ms between requests", args.pause_ms),
                                ("saturated: as fast as it goes", 0)):
            found: dict[str, list[tuple[float, float, float, float]]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for label, host in hosts.items():
                    before = sum(shoal.cpu_times()[:2])
                    rps, p50, p99 = wrk(url, host, args.duration, args.connections, pause_ms, tmp)
                    cpu = (sum(shoal.cpu_times()[:2]) - before) * 1e6 / max(1.0, rps * args.duration)
                    found[label].append((rps, p50, p99, cpu))
            print(f"\n{title} ({args.connections} connections, {args.duration} s, median of {args.rounds} rounds)")
            print(f"{'forwarding':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'shoal CPU/req':>15}")
            medians = {}
            for label in ("off", "on"):
                rps, p50, p99, cpu = sorted(found[label])[len(found[label]) // 2]
                medians[label] = (rps, p99)
                print(f"{label:<12}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}{cpu:>12.0f} us")
            print(f"forwarding on: {100 * medians['on'][0] / medians['off'][0]:.0f} % of the throughput with it off, "
                  f"p99 {medians['on'][1] - medians['off'][1]:+.2f} ms")
    finally:
        server.stop()
        for process in (papertrail, datadog):
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pause-ms", type=int, default=20,
                        help="paced table: each connection's wait between requests (32 x 20 ms: ~1,600 req/s)")
    parser.add_argument("--no-ingress", action="store_true", help="only the throughput table")
    parser.add_argument("--receive", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(args.receive, args.port, args.cert, args.key, args.expect)
        return
    with tempfile.TemporaryDirectory(prefix="shoal-bench-forwarding-") as name:
        tmp = Path(name)
        ca = ReceiverCa(tmp / "ca")
        results: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for _ in range(args.rounds):
            for kind in KINDS:
                results[kind].append(throughput(kind, args.lines, ca))
        print(f"\nthroughput: {args.lines} lines of ~60 bytes to a receiver in its own process on loopback, "
              f"median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs shared")
        print(f"{'destination':<44}{'lines/s':>12}")
        labels = {"raw-tls": "(peer) the same RFC 5424 lines, one TLS write", "papertrail": "papertrail (syslog/TLS)",
                  "datadog": "datadog (HTTPS, gzip JSON)", "open_search": "open_search (HTTPS _bulk NDJSON)",
                  "logtail": "logtail (HTTPS JSON)"}
        for kind in KINDS:
            print(f"{labels[kind]:<44}{sorted(results[kind])[len(results[kind]) // 2]:>12.0f}")
        if not args.no_ingress:
            if not shutil.which("wrk"):
                sys.exit("wrk is not installed (apt-get install wrk); the ingress table needs it")
            ingress(args, ca, tmp)


if __name__ == "__main__":
    main()
