"""``python bench/buildpack_apps.py``: a deploy of each test app beside the same build done by hand.

See ``bench/buildpacks.py`` for what is measured. Apps whose toolchain the machine lacks are left out
and named. Prints a table; never asserts.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.buildpacks import apps  # noqa: E402
from tests.conftest import unique_name, wait_deployment  # noqa: E402
from tests.e2e.apps import git  # noqa: E402
from tests.live import LiveServer  # noqa: E402

COREPACK = "COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_INTEGRITY_KEYS=0"
ROUNDS = 3


@dataclass(frozen=True)
class Case:
    name: str
    tools: tuple[str, ...]
    make: Callable[[Path], Path]
    by_hand: str  # shell commands run in a fresh copy, then the web process
    run: str
    spec: dict[str, object]


CASES = (
    Case("Django (uv by DO's buildpack / venv+pip by hand)", (), lambda d: apps.write(d, apps.DJANGO),
         "python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && "
         ".venv/bin/python manage.py collectstatic --noinput >/dev/null", ".venv/bin/python -m mysite.serve", {}),
    Case("Go module (Go 1.19, Procfile)", ("go",), lambda d: apps.go_app(d, go="1.19"),
         "GOPROXY=off go build -o bin/hello-go .", "bin/hello-go",
         {"envs": [{"key": "GOPROXY", "value": "off"}]}),
    Case("Laravel-shaped PHP (composer + npm build)", ("php", "composer", "node"), apps.php_app,
         "COMPOSER_ALLOW_SUPERUSER=1 composer install -q --no-dev --optimize-autoloader && npm install -s && "
         "npm run -s build", "php -S 0.0.0.0:$PORT -t public", {}),
    Case("Sinatra (Debian's gems)", ("ruby", "bundle"), apps.sinatra_app, "bundle check >/dev/null",
         "bundle exec rackup config.ru -p $PORT", {}),
    Case("Node, yarn.lock", ("node", "corepack"), lambda d: apps.node_app(d, "yarn"),
         f"{COREPACK} corepack yarn@1.22.22 install -s --frozen-lockfile && "
         f"{COREPACK} corepack yarn@1.22.22 run -s build", "node server.js", {}),
    Case("Node, pnpm-lock.yaml", ("node", "corepack"), lambda d: apps.node_app(d, "pnpm"),
         f"{COREPACK} corepack pnpm@9.15.9 install --frozen-lockfile >/dev/null && "
         f"{COREPACK} corepack pnpm@9.15.9 run build >/dev/null", "node server.js", {}),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answered(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def by_hand(case: Case, repo: Path, scratch: Path) -> float:
    work = scratch / f"hand-{time.monotonic_ns()}"
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git"))
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    start = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", case.by_hand], cwd=work, env=env, check=True)
    proc = subprocess.Popen(["/bin/sh", "-c", case.run], cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        answered(f"http://127.0.0.1:{port}/")
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def deploy(server: LiveServer, case: Case, repo: Path, period: int | None = None) -> float:
    client = server.client()
    check = {"health_check": {"period_seconds": period}} if period else {}
    spec = {"name": unique_name("bench"), "services": [{"name": "web", "git": {"repo_clone_url": str(repo),
                                                                               "branch": "main"},
                                                        **case.spec, **check}]}
    start = time.perf_counter()
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=600)
    took = time.perf_counter() - start
    if dep["phase"] != "ACTIVE":
        raise RuntimeError(f"{case.name}: deployment ended {dep['phase']}")
    client.apps.delete(created["id"])
    return took


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shoal-bench-apps-") as scratch_dir:
        scratch = Path(scratch_dir)
        server = LiveServer(data_dir=scratch / "data", runtime="local").start()
        rows: list[tuple[str, float, float, float]] = []
        skipped: list[str] = []
        try:
            for case in CASES:
                if any(shutil.which(tool) is None for tool in case.tools):
                    skipped.append(case.name)
                    continue
                repo = case.make(scratch / f"repo-{len(rows)}")
                for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
                    git(repo, *args)
                deploy(server, case, repo)  # warm every cache first
                by_hand(case, repo, scratch)
                samples = [(deploy(server, case, repo), deploy(server, case, repo, period=1),
                            by_hand(case, repo, scratch)) for _ in range(ROUNDS)]
                rows.append((case.name, *(statistics.median(column) for column in zip(*samples, strict=True))))
        finally:
            server.stop()
    print("Deploy through pydo on shoal serve --runtime local (create -> ACTIVE) beside the same build by hand")
    print("(fresh copy, the commands a developer types, then the web process until it answers); warm caches")
    print(f"medians of {ROUNDS} interleaved rounds; 'period 1 s' sets health_check.period_seconds to 1 (default 10)")
    print(f"| {'app':<50} | {'deploy s':>8} | {'period 1 s':>10} | {'by hand s':>9} | {'ratio':>5} |")
    print(f"|{'-' * 52}|{'-' * 10}|{'-' * 12}|{'-' * 11}|{'-' * 7}|")
    for name, deployed, fast, hand in rows:
        print(f"| {name:<50} | {deployed:>8.2f} | {fast:>10.2f} | {hand:>9.2f} | {fast / hand:>5.1f} |")
    for name in skipped:
        print(f"| {name:<50} | skipped: toolchain missing |")


if __name__ == "__main__":
    main()
