"""Benchmark deployments: the engine in simulate mode, and real builds on the local runtime.

    python bench/deploy.py [--sequential 30] [--concurrent 100] [--no-local] [--kubernetes]
                           [--no-container | --only-container]

Simulate mode (no step delay) measures the engine itself — API write, pipeline, store — from
``apps.create`` to ACTIVE, one at a time and 100 at once (target: median < 300 ms).
The local runtime measures ``apps.update`` to ACTIVE for a Python service whose dependencies
are already built (target: < 2 s plus the app's own start time), and reports the first build of
a Flask app (pip install from PyPI; not targeted). ``--kubernetes`` (root; starts a throwaway cluster
with ``scripts/kube-dev-cluster``) measures ``apps.update`` to ACTIVE on ``--runtime kubernetes`` beside
``kubectl apply`` + ``kubectl rollout status`` of the same Deployment (same image, command, probe,
replicas), in the same run. Prints tables; never asserts.
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


FLASK_APP = """
import os
from flask import Flask
app = Flask(__name__)
@app.get("/")
def index():
    return "hello from flask " + os.environ.get("VERSION", "")
if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


def _wait_active(http: Any, app_id: str, dep_id: str) -> float:
    start = time.perf_counter()
    while True:
        phase = http.get(f"/v2/apps/{app_id}/deployments/{dep_id}").json()["deployment"]["phase"]
        if phase in ("ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"):
            if phase != "ACTIVE":
                raise RuntimeError(f"deployment ended {phase}")
            return time.perf_counter() - start
        time.sleep(0.02)


def local_figures(rounds: int = 5) -> list[str]:
    from tests.e2e.apps import make_repo

    with tempfile.TemporaryDirectory() as tmp:
        repo = make_repo(Path(tmp) / "flask", {"app.py": FLASK_APP, "requirements.txt": "flask\n",
                                               "Procfile": "web: python app.py\n"})
        server = LiveServer(Path(tmp) / "data", runtime="local", extra_args=[
            "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED]).start()
        try:
            with server.http() as http:
                def spec(version: str) -> dict[str, Any]:
                    return {"name": "flask-bench", "services": [{
                        "name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                        "envs": [{"key": "VERSION", "value": version, "scope": "RUN_TIME"}],
                        "health_check": {"http_path": "/", "period_seconds": 1}}]}

                start = time.perf_counter()
                app = http.post("/v2/apps", json={"spec": spec("v0")}).json()["app"]
                _wait_active(http, app["id"], app["pending_deployment"]["id"])
                first = time.perf_counter() - start
                updates = []
                for i in range(rounds):
                    start = time.perf_counter()
                    dep = http.put(f"/v2/apps/{app['id']}", json={"spec": spec(f"v{i + 1}")}).json()
                    _wait_active(http, app["id"], dep["app"]["pending_deployment"]["id"])
                    updates.append(time.perf_counter() - start)
        finally:
            server.stop()
    return [row("update → ACTIVE, deps already built", updates),
            f"| {'first build of a Flask app (pip)':<34} | {1:>5} | {first * 1000:>8.1f} | {'':>8} |"]


KUBE_WEB = 'mkdir -p /www && echo "$VERSION" > /www/index.html && exec httpd -f -p 8080 -h /www'


def _kubectl_rollout(kubeconfig: Path, image: str, version: str) -> float:
    """``kubectl apply`` of a 2-replica Deployment with a readiness probe, then ``rollout status``."""
    import json
    import subprocess

    container = {"name": "web", "image": image, "command": ["/bin/sh", "-c", KUBE_WEB],
                 "env": [{"name": "VERSION", "value": version}], "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "peer", "namespace": "default"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "peer"}},
                           "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                           "template": {"metadata": {"labels": {"app": "peer"}}, "spec": {"containers": [container]}}}}
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    start = time.perf_counter()
    subprocess.run(["kubectl", "apply", "-f", "-"], input=json.dumps(deployment), text=True, env=env, check=True,
                   capture_output=True)
    subprocess.run(["kubectl", "rollout", "status", "deployment/peer", "--timeout=300s"], env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def kube_figures(rounds: int = 5) -> list[str]:
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "kube-dev-cluster"
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Path(tmp) / "cluster"
        began = time.perf_counter()
        subprocess.run([sys.executable, str(script), "up", str(cluster)], check=True, capture_output=True)
        cold = time.perf_counter() - began
        try:
            registry = (cluster / "registry").read_text().strip()
            image = subprocess.run([sys.executable, str(script), "image", str(cluster), "bench/busybox:1", "--busybox"],
                                   check=True, capture_output=True, text=True).stdout.strip()
            server = LiveServer(Path(tmp) / "data", runtime="kubernetes", extra_args=[
                "--kubeconfig", str(cluster / "kubeconfig"), "--registry-mirror", f"docker.io={registry}",
                "--rate-limit-per-minute", UNLIMITED, "--rate-limit-per-hour", UNLIMITED]).start()
            try:
                with server.http() as http:
                    def spec(version: str) -> dict[str, Any]:
                        return {"name": "kube-bench", "services": [{
                            "name": "web", "instance_count": 2, "instance_size_slug": "apps-s-1vcpu-1gb",
                            "image": {"registry_type": "DOCKER_HUB", "registry": "bench", "repository": "busybox",
                                      "tag": "1"}, "run_command": KUBE_WEB.replace("8080", "$PORT"),
                            "envs": [{"key": "VERSION", "value": version}],
                            "health_check": {"http_path": "/", "period_seconds": 1}}]}

                    app = http.post("/v2/apps", json={"spec": spec("v0")}).json()["app"]
                    _wait_active(http, app["id"], app["pending_deployment"]["id"])
                    _kubectl_rollout(cluster / "kubeconfig", image, "v0")
                    shoal, peer = [], []
                    for i in range(rounds):
                        start = time.perf_counter()
                        dep = http.put(f"/v2/apps/{app['id']}", json={"spec": spec(f"v{i + 1}")}).json()
                        _wait_active(http, app["id"], dep["app"]["pending_deployment"]["id"])
                        shoal.append(time.perf_counter() - start)
                        peer.append(_kubectl_rollout(cluster / "kubeconfig", image, f"v{i + 1}"))
                    http.delete(f"/v2/apps/{app['id']}")
            finally:
                server.stop()
        finally:
            subprocess.run([sys.executable, str(script), "down", str(cluster)], check=True, capture_output=True)
    return [row("shoal: update → ACTIVE", shoal), row("kubectl apply + rollout status", peer),
            f"\ncluster cold start (kube-dev-cluster up): {cold:.1f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--no-local", action="store_true", help="skip the local-runtime figures")
    parser.add_argument("--kubernetes", action="store_true", help="add the Kubernetes row (root; a throwaway cluster)")
    parser.add_argument("--no-container", action="store_true", help="skip the container-runtime figures")
    parser.add_argument("--only-container", action="store_true", help="only the container-runtime figures")
    args = parser.parse_args()
    if args.only_container:
        return print_container()
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
    if not args.no_local:
        print("\n| local runtime (Flask service) | count | p50 (ms) | p90 (ms) |")
        print("| --- | ---: | ---: | ---: |")
        for line in local_figures():
            print(line)
        print("\nTarget: update → ACTIVE under 2 s plus the app's own start time.")
    if args.kubernetes:
        print("\n| kubernetes runtime (2 busybox httpd pods, readiness every 1 s) | count | p50 (ms) | p90 (ms) |")
        print("| --- | ---: | ---: | ---: |")
        for line in kube_figures():
            print(line)
    if not args.no_container:
        print_container()


def print_container() -> None:
    from deploy_container import container_figures  # beside this file (sys.path[0])

    print("\n| container runtime (podman, Go hello image) | count | shoal p50 (ms) | bare podman p50 (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for line in container_figures():
        print(line)
    print("\nBare podman: `podman run -d -p` until the port answers; `podman build` of the same context, warm cache.")


if __name__ == "__main__":
    main()
