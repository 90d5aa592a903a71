"""Benchmark the ingress: requests/s and p99 for a small response at 64 keep-alive connections.

    python bench/ingress.py [--duration 6] [--rounds 3] [--connections 64] [--profile out.txt]

Three rows, all measured with ``wrk`` against the same tiny ASGI app (uvicorn + httptools, one
process): (a) the app directly, (b) through shoal's ingress (``shoal serve --runtime local``
deploys the same app from a temp git repo), (c) through nginx configured the same way (one
worker, keep-alive upstream, the same X-Forwarded-For/-Proto/-Host headers) when nginx is
installed. Target: (b) ≥ 60 % of (a)'s throughput with < 2 ms added p99.

Two tables. *Saturated*: every path as fast as it goes; with 64 connections always busy, latency
there is mostly the queue (Little's law: mean latency = connections / throughput), so its p99
follows throughput. *Paced*: every path under the same load, half of what the slowest path
managed saturated (each connection waits a fixed time between requests), so the p99 difference
is the latency the proxy itself adds. ``--profile`` records the ingress with py-spy during an
extra run and prints its hottest frames. Prints tables; never asserts.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.apps import make_repo
from tests.live import LiveServer, free_port

APP = '''
import os, uvicorn

BODY = b"hello from the bench app\\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})

uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False,
            lifespan="off", http="httptools", loop="uvloop")
'''

NGINX = '''
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    upstream app {{ server 127.0.0.1:{app_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
'''


@dataclass(frozen=True)
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    proxy_us: float | None = None  # CPU time the proxy process spent per request


def cpu_seconds(pid: int, children: bool) -> float:
    """CPU time of a process, and of its children when asked (nginx's workers are the master's
    children; shoal's children are the apps it runs, which are not the proxy's work)."""
    main = psutil.Process(pid)
    processes = [main, *main.children(recursive=True)] if children else [main]
    return sum(float(t.user + t.system) for t in (p.cpu_times() for p in processes))


def measured(label: str, url: str, host: str | None, duration: int, connections: int, tmp: Path,
             proxy_pid: int | None, pause_ms: int = 0) -> Result:
    """One wrk run; with ``proxy_pid``, also the proxy's CPU microseconds per request."""
    children = label.startswith("(c)")
    before = cpu_seconds(proxy_pid, children) if proxy_pid else 0.0
    result = wrk(label, url, host, duration, connections, tmp, pause_ms)
    if not proxy_pid:
        return result
    spent = cpu_seconds(proxy_pid, children) - before
    return Result(label, result.rps, result.p50_ms, result.p99_ms, result.errors,
                  1e6 * spent / max(1.0, result.rps * duration))


def compiled() -> bool:
    """Whether the installed ingress is the mypyc-compiled build (see setup.py)."""
    import shoal.ingress.exchange

    return not str(shoal.ingress.exchange.__file__).endswith(".py")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(label: str, url: str, host: str | None, duration: int, connections: int, tmp: Path,
        pause_ms: int = 0) -> Result:
    """``pause_ms``: each connection waits this long before each request (wrk does not count the
    wait in the latency), which paces the load at about ``connections * 1000 / pause_ms`` req/s."""
    script = tmp / "host.lua"
    script.write_text((f'wrk.headers["Host"] = "{host}"\n' if host else "")
                      + (f"function delay() return {pause_ms} end\n" if pause_ms else ""))
    out = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return Result(label, rps, p50, p99, errors)


def wait_ok(url: str, host: str | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers={"host": host} if host else {}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def start_app(repo: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=repo / "app", env={**os.environ, "PORT": str(port)})
    wait_ok(f"http://127.0.0.1:{port}/")
    return process, port


def start_nginx(tmp: Path, app_port: int) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        return None
    port = free_port()
    prefix = tmp / "nginx"
    prefix.mkdir()
    (prefix / "nginx.conf").write_text(NGINX.format(tmp=prefix, app_port=app_port, port=port))
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")])
    wait_ok(f"http://127.0.0.1:{port}/")
    return process, port


def deploy(server: LiveServer, repo: Path) -> str:
    client = server.client()
    spec = {"name": f"bench-ingress-{int(time.time()) % 100000}", "services": [{
        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "source_dir": "app",
        "run_command": "python3 app.py"}]}
    app = client.apps.create(body={"spec": spec})["app"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = client.apps.get_deployment(app["id"], app["pending_deployment"]["id"])["deployment"]["phase"]
        if phase == "ACTIVE":
            return str(client.apps.get(app["id"])["app"]["live_domain"])
        if phase in ("ERROR", "CANCELED", "SUPERSEDED"):
            raise RuntimeError(f"bench app deployment ended {phase}:\n{server.log()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("bench app did not become ACTIVE within 120 s")


def profile(pid: int, url: str, host: str, duration: int, connections: int, tmp: Path, out: Path) -> None:
    """py-spy the ingress under load, then print the hottest frames (self) and proxy.py (inclusive)."""
    spy = subprocess.Popen(["py-spy", "record", "-p", str(pid), "-f", "raw", "-r", "200", "-d", str(duration + 1),
                            "-o", str(out), "--nonblocking", *(["--native"] if os.environ.get("PYSPY_NATIVE") else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    wrk("profiled", url, host, duration, connections, tmp)
    spy.wait()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[_short(frames[-1])] += int(count)
        for frame in {f for f in frames if "ingress/" in f}:
            inclusive[_short(frame)] += int(count)
    print(f"\npy-spy: {total} samples of the shoal serve process ({out})")
    print("hottest frames (self time):")
    for frame, samples in own.most_common(15):
        print(f"  {100 * samples / total:5.1f} %  {frame}")
    print("shoal.ingress frames (inclusive):")
    for frame, samples in inclusive.most_common(12):
        print(f"  {100 * samples / total:5.1f} %  {frame}")


def _short(frame: str) -> str:
    return re.sub(r"\((?:.*/)?(site-packages/|src/)?([^()]*)\)$", r"(\2)", frame)


Run = tuple[str, str, str | None, int | None]  # label, URL, Host header, proxy pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs per path, interleaved (a, b, c, a, b, c, ...); the median run is reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--interpreted", action="store_true",
                        help="add a row for the ingress running as plain Python (src/ on PYTHONPATH), to see "
                             "what the compiled build gains")
    parser.add_argument("--profile", type=Path, help="also py-spy the ingress under load, raw output to this file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-ingress-") as name:
        tmp = Path(name)
        repo = make_repo(tmp / "repo", {"app/app.py": APP})
        app, app_port = start_app(repo)
        servers = [LiveServer(data_dir=tmp / "data", runtime="local")]
        if args.interpreted:
            servers.append(LiveServer(data_dir=tmp / "data-py", runtime="local",
                                      env={"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}))
        nginx = None
        try:
            runs: list[Run] = [("(a) app directly", f"http://127.0.0.1:{app_port}/", None, None)]
            for server, label in zip(servers, ["(b) shoal ingress", "(b') interpreted"], strict=False):
                server.start()
                host = deploy(server, repo)  # one after the other: each app's instance needs its own port
                url = f"http://127.0.0.1:{server.ingress_port}/"
                wait_ok(url, host)
                runs.append((label, url, host, server.process.pid if server.process else None))
            nginx = start_nginx(tmp, app_port)
            if nginx:
                runs.append(("(c) nginx", f"http://127.0.0.1:{nginx[1]}/", runs[1][2], nginx[0].pid))
            for label, url, run_host, _ in runs:
                wrk("warm-up", url, run_host, 2, args.connections, tmp)
            saturated = rounds(runs, args, tmp, 0)
            # Paced at half of what the slowest path managed: every path carries the same load.
            pause_ms = max(1, round(args.connections * 1000 / (min(r.rps for r in saturated) / 2)))
            paced = rounds(runs, args, tmp, pause_ms)
            if args.profile:
                _, url, run_host, pid = runs[1]
                assert pid is not None and run_host is not None
                profile(pid, url, run_host, args.duration, args.connections, tmp, args.profile)
        finally:
            if nginx:
                nginx[0].terminate()
                nginx[0].wait()
            for server in servers:
                server.stop()
            app.terminate()
            app.wait()
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s, small response, keep-alive; median of "
          f"{args.rounds} interleaved rounds; {os.cpu_count()} CPUs shared by wrk, proxy and app; "
          f"ingress {'compiled (mypyc)' if compiled() else 'interpreted (no compiled build installed)'}")
    report("saturated: every path as fast as it goes", saturated)
    report(f"paced: each connection waits {pause_ms} ms between requests (the same load on every path)", paced)
    print("target for (b): >= 60 % of (a)'s saturated throughput and < 2 ms added p99")


def rounds(runs: list[Run], args: argparse.Namespace, tmp: Path, pause_ms: int) -> list[Result]:
    """Interleaved rounds (a noisy neighbour on this shared machine hits every path alike); the
    median run of each path."""
    found: dict[str, list[Result]] = {label: [] for label, *_ in runs}
    for _ in range(args.rounds):
        for label, url, run_host, pid in runs:
            found[label].append(measured(label, url, run_host, args.duration, args.connections, tmp, pid, pause_ms))
    return [sorted(results, key=lambda r: r.rps)[len(results) // 2] for results in found.values()]


def report(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    print(f"{'path':<20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'proxy CPU/req':>15}")
    for r in results:
        cpu = f"{r.proxy_us:.0f} us" if r.proxy_us is not None else "-"
        print(f"{r.label:<20}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{cpu:>15}")
    direct = results[0]
    for r in results[1:]:
        print(f"{r.label}: {100 * r.rps / direct.rps:.0f} % of direct throughput, "
              f"p99 {r.p99_ms - direct.p99_ms:+.2f} ms")


if __name__ == "__main__":
    main()
