"""``shoal up`` / ``shoal down`` run as subprocesses in a temp git checkout, with their own background server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shoal.cli.up_git import map_to_snapshot, normalise_url
from tests.e2e.apps import git, make_repo
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]
APP = textwrap.dedent('''
    import http.server, os
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"TEXT\\n"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Hello).serve_forever()
''')
SPEC = "name: upapp\nservices:\n  - name: web\n    run_command: python3 app.py\n"
FAILING = textwrap.dedent('''
    name: upfail
    services:
      - name: web
        run_command: python3 -c "raise SystemExit(1)"
        health_check:
          http_path: /
          period_seconds: 1
          failure_threshold: 2
''')


@dataclass
class Checkout:
    repo: Path
    data: Path
    home: Path
    ingress_port: int
    api_port: int

    def shoal(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "XDG_")) and k != "DIGITALOCEAN_TOKEN"}
        env["HOME"] = str(self.home)
        flags = ["--data-dir", str(self.data), "--api-listen", f"127.0.0.1:{self.api_port}"]
        if args[0] == "up":
            flags += ["--ingress-listen", f"127.0.0.1:{self.ingress_port}"]
        return subprocess.run([sys.executable, "-m", "shoal", *args, *flags], cwd=self.repo, env=env, text=True,
                              capture_output=True, timeout=timeout, check=False)

    def get(self, url: str) -> str:
        host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        return httpx.get(f"http://127.0.0.1:{self.ingress_port}/", headers={"host": host}, timeout=10).text

    def server_pid(self) -> int | None:
        path = self.data / "serve.pid"
        return int(path.read_text()) if path.exists() else None


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    root = tmp_path_factory.mktemp("up")
    repo = make_repo(root / "repo", {"app.py": APP.replace("TEXT", "v1 committed"), ".do/app.yaml": SPEC,
                                      ".gitignore": "*.log\n"})
    (root / "home").mkdir()
    made = Checkout(repo=repo, data=root / "data", home=root / "home", ingress_port=free_port(), api_port=free_port())
    yield made
    pid = made.server_pid()
    if pid is not None and psutil.pid_exists(pid):  # a test failed before `down --all`
        psutil.Process(pid).kill()


def live_url(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"^http://\S+$", done.stdout, re.MULTILINE)
    assert found, done.stdout + done.stderr
    return found.group(0)


def test_up_deploys_the_working_tree_and_then_an_uncommitted_edit(checkout: Checkout) -> None:
    head = git(checkout.repo, "rev-parse", "HEAD")
    first = checkout.shoal("up", "--detach")
    url = live_url(first)
    assert "started shoal serve in the background" in first.stderr and "✓ build" in first.stderr
    assert (checkout.data / "serve.pid").exists() and (checkout.data / "serve.log").exists()
    assert checkout.get(url) == "v1 committed\n"

    (checkout.repo / "app.py").write_text(APP.replace("TEXT", "v2 uncommitted"))
    (checkout.repo / "new-untracked.txt").write_text("included\n")
    (checkout.repo / "ignored.log").write_text("left out\n")
    second = checkout.shoal("up", "--detach")
    assert live_url(second) == url and "started shoal serve" not in second.stderr
    assert checkout.get(url) == "v2 uncommitted\n"
    # The user's branch, index and stash are as they were; the snapshot holds untracked, not ignored, files.
    assert git(checkout.repo, "rev-parse", "HEAD") == head
    assert git(checkout.repo, "status", "--porcelain") == "M app.py\n?? new-untracked.txt"  # git() strips
    assert git(checkout.repo, "stash", "list") == ""
    snapshot = checkout.data / "up" / "upapp" / "snapshot.git"
    files = git(snapshot, "ls-tree", "-r", "--name-only", "main").split()
    assert "new-untracked.txt" in files and "ignored.log" not in files


def test_a_failing_deployment_exits_3_with_the_reason_and_log(checkout: Checkout) -> None:
    spec = checkout.home / "failing.yaml"
    spec.write_text(FAILING)
    done = checkout.shoal("up", str(spec), "--detach")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "failed at step deploy/components/web/wait: ContainerHealthChecksFailed" in done.stderr
    assert "last " in done.stderr and "lines of the deploy log of web" in done.stderr
    assert checkout.shoal("down", "upfail").returncode == 0


def test_spec_problems_point_at_lines(checkout: Checkout) -> None:
    spec = checkout.home / "bad.yaml"
    spec.write_text("name: upbad\nservices:\n  - name: web\n    run_command: x\n    instance_count: 0\n")
    done = checkout.shoal("up", str(spec), "--detach")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{spec}:5" in done.stderr


def test_down_deletes_the_checkouts_app(checkout: Checkout) -> None:
    done = checkout.shoal("down")
    assert done.returncode == 0 and "deleted app upapp" in done.stderr, done.stderr
    assert not (checkout.data / "up" / "upapp").exists()
    again = checkout.shoal("down")
    assert again.returncode == 1 and "not found" in again.stderr


def test_down_all_stops_the_server_and_everything_it_ran(checkout: Checkout) -> None:
    pid = checkout.server_pid()
    assert pid is not None
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    done = checkout.shoal("down", "--all")
    assert done.returncode == 0 and f"stopped the background server (pid {pid})" in done.stderr, done.stderr
    assert not (checkout.data / "serve.pid").exists()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, alive


def test_urls_are_compared_normalised() -> None:
    same = {"https://github.com/Acme/Web.git", "git@github.com:Acme/Web.git", "ssh://git@github.com:22/Acme/Web",
            "https://user:pw@github.com/Acme/Web/"}
    assert {normalise_url(url) for url in same} == {"github.com/Acme/Web"}
    spec: dict[str, Any] = {"name": "x", "services": [
        {"name": "mine", "github": {"repo": "Acme/Web", "branch": "dev"}, "source_dir": "api"},
        {"name": "bare"},
        {"name": "other", "git": {"repo_clone_url": "https://gitlab.com/else/where.git"}},
        {"name": "img", "image": {"registry_type": "DOCKER_HUB", "repository": "nginx"}}]}
    mapped = map_to_snapshot(spec, {"github.com/Acme/Web"}, Path("/snap.git"))
    assert mapped.local == ["mine", "bare"]
    assert mapped.spec["services"][0] == {"name": "mine", "source_dir": "api",
                                          "git": {"repo_clone_url": "/snap.git", "branch": "main"}}
    assert mapped.spec["services"][2] == spec["services"][2] and "github" in spec["services"][0]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: the terminal view needs a real "
                                                         "terminal to be checked (apt-get install tmux)")
def test_the_terminal_view_is_not_garbled(tmp_path: Path) -> None:
    out = tmp_path / "shoal-up.txt"
    done = subprocess.run(["bash", str(ROOT / "scripts" / "capture_up.sh"), str(out)], capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr + (out.read_text() if out.exists() else "")
    screen = out.read_text()
    assert "✓ demo is live at http://demo-" in screen and "served /" in screen
