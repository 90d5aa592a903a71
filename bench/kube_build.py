"""Benchmark git builds on ``--runtime kubernetes``: a commit pushed → ACTIVE, beside doing it by hand.

    sudo python bench/kube_build.py [--rounds 5]

Starts a throwaway cluster (``scripts/kube-dev-cluster``) and ``shoal serve --runtime kubernetes
--image-registry`` on it. Each round commits a new version of a small Dockerfile app (``FROM`` a busybox
image in the cluster's registry, one ``RUN``, one ``COPY``) and measures, in the same run:

* shoal: ``create_deployment`` → ACTIVE (fetch, podman build, push, digest, apply, rollout, traffic);
* by hand: ``podman build`` + ``podman push`` of the same tree + ``kubectl apply`` of a 1-replica
  Deployment by that digest with the same readiness probe + ``kubectl rollout status``.

Also the same commit deployed again (the build reused, nothing pushed). Prints a table; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.apps import commit, make_repo  # noqa: E402
from tests.live import LiveServer  # noqa: E402

SCRIPT = ROOT / "scripts" / "kube-dev-cluster"
UNLIMITED = str(10**9)
SERVE = 'mkdir -p /www && echo "$(cat /version) $(cat /flavour)" > /www/index.html && exec httpd -f -p "$PORT" -h /www\n'


def _row(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"| {name:<52} | {len(ms):>5} | {statistics.median(ms):>8.0f} | {p90:>8.0f} |"


def _wait_active(http: Any, app_id: str, dep_id: str) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        phase = http.get(f"/v2/apps/{app_id}/deployments/{dep_id}").json()["deployment"]["phase"]
        if phase == "ACTIVE":
            return
        if phase in ("ERROR", "CANCELED", "SUPERSEDED"):
            raise RuntimeError(f"deployment {dep_id} ended {phase}")
        time.sleep(0.05)
    raise RuntimeError(f"deployment {dep_id} did not finish")


def _by_hand(repo: Path, registry: str, kubeconfig: Path, version: int) -> float:
    """podman build + push, then kubectl apply by digest + rollout status."""
    env = {"KUBECONFIG": str(kubeconfig), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    target = f"{registry}/bench/byhand:{version}"
    start = time.perf_counter()
    subprocess.run(["podman", "build", "-q", "--tls-verify=false", "--build-arg", "FLAVOUR=salty", "-t", target,
                    str(repo)], check=True, capture_output=True)
    digest_file = repo.parent / "digest"
    subprocess.run(["podman", "push", "-q", "--tls-verify=false", "--digestfile", str(digest_file), target],
                   check=True, capture_output=True)
    image = f"{registry}/bench/byhand@{digest_file.read_text().strip()}"
    container = {"name": "web", "image": image, "env": [{"name": "PORT", "value": "8080"}],
                 "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "byhand", "namespace": "default"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "byhand"}},
                           "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                           "template": {"metadata": {"labels": {"app": "byhand"}}, "spec": {"containers": [container]}}}}
    subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(deployment), text=True, env=env, check=True,
                   capture_output=True)
    subprocess.run(["kubectl", "rollout", "status", "deployment/byhand", "--timeout=300s"], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def figures(rounds: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = root / "cluster"
        subprocess.run([sys.executable, str(SCRIPT), "up", str(cluster)], check=True, capture_output=True)
        server: LiveServer | None = None
        try:
            registry = (cluster / "registry").read_text().strip()
            subprocess.run([sys.executable, str(SCRIPT), "image", str(cluster), "bench/busybox:base", "--busybox"],
                           check=True, capture_output=True)
            repo = make_repo(root / "repo", {
                "Dockerfile": f"FROM {registry}/bench/busybox:base\nARG FLAVOUR\nRUN echo \"$FLAVOUR\" > /flavour\n"
                              "COPY version serve.sh /\nCMD [\"/bin/sh\", \"/serve.sh\"]\n",
                "version": "v0\n", "serve.sh": SERVE})
            server = LiveServer(root / "data", runtime="kubernetes", extra_args=[
                "--kubeconfig", str(cluster / "kubeconfig"), "--image-registry", registry,
                "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED]).start()
            spec = {"name": "kube-build-bench", "services": [{
                "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"}, "dockerfile_path": "Dockerfile",
                "http_port": 8080, "envs": [{"key": "FLAVOUR", "value": "salty", "scope": "BUILD_TIME"}],
                "health_check": {"http_path": "/", "period_seconds": 1},
                "termination": {"drain_seconds": 1, "grace_period_seconds": 3}}]}
            shoal, again, hand = [], [], []
            with server.http() as http:
                start = time.perf_counter()
                app = http.post("/v2/apps", json={"spec": spec}).json()["app"]
                _wait_active(http, app["id"], app["pending_deployment"]["id"])
                first = time.perf_counter() - start
                _by_hand(repo, registry, cluster / "kubeconfig", 0)
                for i in range(1, rounds + 1):
                    commit(repo, f"v{i}", {"version": f"v{i}\n"})
                    start = time.perf_counter()
                    dep = http.post(f"/v2/apps/{app['id']}/deployments", json={"force_build": False}).json()
                    _wait_active(http, app["id"], dep["deployment"]["id"])
                    shoal.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    dep = http.post(f"/v2/apps/{app['id']}/deployments", json={"force_build": False}).json()
                    _wait_active(http, app["id"], dep["deployment"]["id"])
                    again.append(time.perf_counter() - start)
                    hand.append(_by_hand(repo, registry, cluster / "kubeconfig", i))
                http.delete(f"/v2/apps/{app['id']}")
                time.sleep(5)  # the app's images go with it (removed before its namespace)
        finally:
            if server is not None:
                server.stop()
            subprocess.run(["podman", "rmi", "-f", *[f"{registry}/bench/byhand:{i}" for i in range(rounds + 1)],
                            f"{registry}/bench/busybox:base"], capture_output=True)
            subprocess.run([sys.executable, str(SCRIPT), "down", str(cluster)], check=True, capture_output=True)
    return [_row("shoal: new commit → ACTIVE (build, push, rollout)", shoal),
            _row("by hand: podman build + push, kubectl apply + rollout", hand),
            _row("shoal: same commit again → ACTIVE (build reused)", again),
            f"\nfirst deployment (cold: podman service start, FROM pull, build, push): {first:.1f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("podman") is None or os.geteuid() != 0:
        sys.exit("needs root and podman")
    print("| kubernetes runtime, Dockerfile app from git (1 pod, readiness every 1 s) | count | p50 (ms) | p90 (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for line in figures(args.rounds):
        print(line)


if __name__ == "__main__":
    main()
