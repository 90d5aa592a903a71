"""``shoal serve --runtime kubernetes`` on the real one-node cluster, driven through pydo.

shoal talks to the cluster as the service account of ``deploy/kubernetes/rbac.yaml``; images are small
FROM-scratch busybox images pushed to the cluster's loopback registry, named in the specs as Docker Hub
images that ``--registry-mirror docker.io=REGISTRY`` sends there. Components built from git are built by
shoal's podman and pushed to the same registry (``--image-registry REGISTRY``). Traffic goes through
shoal's ingress to the pods' addresses on the cluster's bridge.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.runtime.kubernetes.connection import Kube, Target
from tests.conftest import leaves, unique_name, wait_deployment, wait_for
from tests.doctl_console import DoctlConsole, exec_url
from tests.e2e.apps import commit, make_repo
from tests.kubecluster import KubeCluster, rbac_kubeconfig
from tests.live import LiveServer

kubernetes = pytest.importorskip("kubernetes")

WEB = ('mkdir -p /www && echo "$(cat /version) $VERSION token-${#TOKEN}" > /www/index.html'
       ' && echo "web $VERSION up" && exec httpd -f -v -p $PORT -h /www')  # the secret's length, not the secret
SICK = 'mkdir -p /www && echo "sick web up" && exec httpd -f -v -p $PORT -h /www'  # no index: / answers 404


@pytest.fixture(scope="module")
def kube(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    root = tmp_path_factory.mktemp("kube-e2e")
    config = rbac_kubeconfig(kube_cluster, root)
    server = LiveServer(data_dir=root / "data", runtime="kubernetes",
                        extra_args=["--kubeconfig", str(config),
                                    "--registry-mirror", f"docker.io={kube_cluster.registry}",
                                    "--image-registry", kube_cluster.registry]).start()
    admin = kubernetes.config.new_client_from_config(str(kube_cluster.kubeconfig))
    yield server, admin
    admin.close()
    server.stop()


def push_version(cluster: KubeCluster, tmp: Path, tag: str, content: str) -> str:
    version = tmp / f"version-{content}"
    version.write_text(content + "\n")
    return cluster.push_image(f"e2e/busybox:{tag}", f"{version}:/version")


def image(tag: str) -> dict[str, Any]:
    return {"image": {"registry_type": "DOCKER_HUB", "registry": "e2e", "repository": "busybox", "tag": tag}}


def through_ingress(server: LiveServer, app: dict[str, Any], path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{server.ingress_port}{path}", headers={"host": app["live_domain"]},
                     timeout=10)


def history(server: LiveServer, answer: dict[str, Any]) -> str:
    with server.http(anonymous=True) as http:
        return http.get(answer["historic_urls"][0]).text


@pytest.mark.timeout(600)
def test_every_kind_runs_in_the_cluster(kube: tuple[LiveServer, Any], kube_cluster: KubeCluster,
                                        tmp_path: Path) -> None:
    server, admin = kube
    client = server.client()
    push_version(kube_cluster, tmp_path, "kinds", "A")
    site = make_repo(tmp_path / "site", {"index.html": "<h1>static home</h1>\n"})
    secret = {"key": "TOKEN", "value": "s3cr3t", "type": "SECRET"}
    spec = {
        "name": unique_name("kube"),
        "services": [{"name": "web", **image("kinds"), "run_command": WEB, "instance_count": 2,
                      "instance_size_slug": "apps-s-1vcpu-1gb",
                      "envs": [{"key": "VERSION", "value": "v1"}, secret],
                      "health_check": {"http_path": "/", "period_seconds": 1},
                      # busybox httpd as PID 1 ignores SIGTERM: without this every pod would take the
                      # default 15 + 120 s to end, and so would the namespace when the app is deleted.
                      "termination": {"drain_seconds": 1, "grace_period_seconds": 3}}],
        "workers": [{"name": "worker", **image("kinds"), "run_command": "while true; do echo worker tick; sleep 1; done",
                     "instance_size_slug": "apps-d-1vcpu-0.5gb", "termination": {"grace_period_seconds": 3},
                     "autoscaling": {"min_instance_count": 1, "max_instance_count": 2,
                                     "metrics": {"cpu": {"percent": 80}}}}],
        "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **image("kinds"), "envs": [secret],
                  "run_command": 'echo "pre ran with a ${#TOKEN}-character token"'},
                 {"name": "tick", "kind": "SCHEDULED", **image("kinds"), "run_command": "echo tick ran",
                  "schedule": {"cron": "* * * * *", "time_zone": "Europe/Amsterdam"}}],
        "static_sites": [{"name": "site", "git": {"repo_clone_url": str(site), "branch": "main"}}],
        "ingress": {"rules": [{"match": {"path": {"prefix": "/site"}}, "component": {"name": "site"}},
                              {"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]},
    }
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=300)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    app = client.apps.get(created["id"])["app"]

    answers = {through_ingress(server, app).text for _ in range(6)}
    assert answers == {"A v1 token-6\n"}
    assert "static home" in through_ingress(server, app, "/site").text
    instances = client.apps.get_instances(created["id"])["instances"]
    assert sorted(i["component_name"] for i in instances) == ["web", "web", "worker"]

    # The SECRET is in a Secret, referenced from the pod spec, never in it.
    core = kubernetes.client.CoreV1Api(admin)
    namespace = f"shoal-{created['id']}"
    pod = core.list_namespaced_pod(namespace, label_selector="shoal.dev/component=web").items[0]
    env = {e.name: e for e in pod.spec.containers[0].env}
    assert env["TOKEN"].value is None and env["TOKEN"].value_from.secret_key_ref.key == "TOKEN"
    assert "s3cr3t" not in str(pod.to_dict())
    assert pod.spec.termination_grace_period_seconds == 4  # drain, then the grace period
    with Kube(Target(kube_cluster.kubeconfig)) as kube_api:  # the HPA of the version 1.20 offers
        scalers = kube_api.request("GET", f"/apis/autoscaling/v2beta2/namespaces/{namespace}/horizontalpodautoscalers")
    assert [(h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in scalers["items"]] == [(1, 2)]
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["shoal.dev/app-id"] == created["id"] and labels["app.kubernetes.io/managed-by"] == "shoal"

    deploy = history(server, client.apps.get_logs_aggregate(created["id"], dep["id"], type="DEPLOY"))
    assert "pre ran with a 6-character token" in deploy
    def run_logs() -> str:
        return history(server, client.apps.get_logs_active_deployment(created["id"], "worker", type="RUN"))

    wait_for(lambda: "worker tick" in run_logs(), timeout=30)

    invocation = wait_for(lambda: next((i for i in client.apps.list_job_invocations(
        created["id"], job_names=["tick"])["job_invocations"] if i["phase"] == "SUCCEEDED"), None), timeout=150)
    assert invocation["trigger"]["type"] == "SCHEDULED"

    client.apps.delete(created["id"])
    wait_for(lambda: not [n for n in core.list_namespace().items if n.metadata.name == namespace], timeout=180)
    assert through_ingress(server, app).status_code == 404


@pytest.mark.timeout(900)
def test_zero_downtime_a_failing_check_scaling_and_rollback(kube: tuple[LiveServer, Any], kube_cluster: KubeCluster,
                                                            tmp_path: Path) -> None:
    server, admin = kube
    client = server.client()
    push_version(kube_cluster, tmp_path, "roll", "A")
    name = unique_name("roll")

    def spec(version: str, count: int = 2, command: str = WEB) -> dict[str, Any]:
        return {"name": name, "services": [{
            "name": "web", **image("roll"), "run_command": command, "instance_count": count,
            "instance_size_slug": "apps-s-1vcpu-1gb",
            "envs": [{"key": "VERSION", "value": version}],
            "health_check": {"http_path": "/", "period_seconds": 1, "failure_threshold": 3},
            "termination": {"drain_seconds": 1, "grace_period_seconds": 5}}]}

    created = client.apps.create(body={"spec": spec("v1")})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=300)
    assert first["phase"] == "ACTIVE", first["progress"]
    app = client.apps.get(created["id"])["app"]
    assert through_ingress(server, app).text == "A v1 token-0\n"

    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.get(f"http://127.0.0.1:{server.ingress_port}/", headers={"host": app["live_domain"]})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:80]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.02)

    loop = threading.Thread(target=load)
    loop.start()
    try:
        # The tag moves to a new image: a redeploy runs it; scaling up and down on the way.
        push_version(kube_cluster, tmp_path, "roll", "B")
        second = client.apps.update(created["id"], body={"spec": spec("v2", count=3)})["app"]["pending_deployment"]
        assert wait_deployment(client, created["id"], second["id"], timeout=300)["phase"] == "ACTIVE"
        wait_for(lambda: through_ingress(server, app).text == "B v2 token-0\n", timeout=30)
        def web() -> list[dict[str, Any]]:
            return [i for i in client.apps.get_instances(created["id"])["instances"] if i["component_name"] == "web"]

        wait_for(lambda: len(web()) == 3, timeout=60)
        third = client.apps.update(created["id"], body={"spec": spec("v3", count=1)})["app"]["pending_deployment"]
        assert wait_deployment(client, created["id"], third["id"], timeout=300)["phase"] == "ACTIVE"
        wait_for(lambda: through_ingress(server, app).text == "B v3 token-0\n", timeout=30)
        wait_for(lambda: len(web()) == 1, timeout=90)
    finally:
        stop.set()
        loop.join()
    assert failures == []

    # A version that never passes its check: ERROR, and v3's pod keeps serving.
    sick = client.apps.update(created["id"], body={"spec": spec("v4", command=SICK)})["app"]["pending_deployment"]
    failed = wait_deployment(client, created["id"], sick["id"], timeout=300)
    assert failed["phase"] == "ERROR"
    assert "ContainerHealthChecksFailed" in [s.get("reason", {}).get("code") for s in leaves(failed["progress"]["steps"])]
    assert through_ingress(server, app).text == "B v3 token-0\n"

    # Rollback to the first deployment runs its image (pinned by digest), though the tag has moved.
    rollback = client.apps.create_rollback(created["id"], body={"deployment_id": first["id"]})["deployment"]
    assert wait_deployment(client, created["id"], rollback["id"], timeout=300)["phase"] == "ACTIVE"
    wait_for(lambda: through_ingress(server, app).text == "A v1 token-0\n", timeout=30)
    client.apps.delete(created["id"])


@pytest.mark.timeout(600)
def test_stopping_shoal_leaves_the_workloads_running_and_a_restart_adopts_them(
        kube: tuple[LiveServer, Any], kube_cluster: KubeCluster, tmp_path: Path) -> None:
    server, admin = kube
    client = server.client()
    push_version(kube_cluster, tmp_path, "adopt", "A")
    spec = {"name": unique_name("adopt"), "services": [{
        "name": "web", **image("adopt"), "run_command": WEB, "envs": [{"key": "VERSION", "value": "v1"}],
        "health_check": {"http_path": "/", "period_seconds": 1}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    assert wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=300)["phase"] == "ACTIVE"
    app = client.apps.get(created["id"])["app"]
    assert through_ingress(server, app).text == "A v1 token-0\n"
    apps = kubernetes.client.AppsV1Api(admin)
    core = kubernetes.client.CoreV1Api(admin)
    namespace = f"shoal-{created['id']}"

    def running() -> tuple[str, int, int]:
        pod = core.list_namespaced_pod(namespace, label_selector="shoal.dev/component=web").items[0]
        workload = apps.list_namespaced_deployment(namespace).items[0]
        return pod.metadata.name, pod.status.container_statuses[0].restart_count, workload.metadata.generation

    before = running()
    server.stop()
    time.sleep(2)
    assert running() == before  # the cluster's now: nothing was stopped or changed
    server.start()
    wait_for(lambda: through_ingress(server, app).status_code == 200, timeout=120)
    assert through_ingress(server, app).text == "A v1 token-0\n"
    assert running() == before  # adopted as it was: the same pod, not restarted, the Deployment untouched
    client = server.client()
    client.apps.delete(created["id"])


@pytest.mark.timeout(600)
def test_doctl_console_execs_a_shell_in_the_pod(kube: tuple[LiveServer, Any], kube_cluster: KubeCluster,
                                                tmp_path: Path) -> None:
    server, _ = kube
    client = server.client()
    push_version(kube_cluster, tmp_path, "console", "C")
    spec = {"name": unique_name("console"),
            "services": [{"name": "web", **image("console"), "run_command": WEB,
                          "envs": [{"key": "VERSION", "value": "v7"}, {"key": "TOKEN", "value": "pod-secret",
                                                                        "type": "SECRET"}],
                          "health_check": {"http_path": "/", "period_seconds": 1}}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=300)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    pod = client.apps.get_instances(created["id"])["instances"][0]["instance_name"]
    answer = exec_url(server, created["id"], "web")
    assert answer.status_code == 200, answer.text
    session = DoctlConsole(answer.json()["url"], server.ca, width=100, height=30)
    try:
        # The pod's own environment (the Secret mounted as env) and its hostname: the shell runs in the pod.
        session.type('echo "[$VERSION|$TOKEN|$(hostname)]"\n')
        session.read_until(f"[v7|pod-secret|{pod}]")
        session.type("exit\n")
        assert session.wait_closed() == 1000
    finally:
        session.close()
    client.apps.delete(created["id"])


SERVE = 'mkdir -p /www && echo "$(cat /version) $(cat /flavour)" > /www/index.html && echo "built web up" ' \
        '&& exec httpd -f -v -p "$PORT" -h /www\n'


def pod_images(admin: Any, app_id: str) -> set[str]:
    core = kubernetes.client.CoreV1Api(admin)
    pods = core.list_namespaced_pod(f"shoal-{app_id}", label_selector="shoal.dev/component=web").items
    return {p.spec.containers[0].image for p in pods if p.metadata.deletion_timestamp is None}


@pytest.mark.timeout(900)
def test_a_service_built_from_git_is_pushed_and_run_by_digest(kube: tuple[LiveServer, Any], kube_cluster: KubeCluster,
                                                             tmp_path: Path) -> None:
    """A Dockerfile build on shoal's podman, FROM an image in the cluster's registry, pushed there and
    run by digest; the same commit again reuses the build and pushes nothing; a new commit serves the
    new version; a rollback runs the first image exactly."""
    if shutil.which("podman") is None:
        pytest.skip("building git sources for Kubernetes needs podman on shoal's host")
    server, admin = kube
    client = server.client()
    push_version(kube_cluster, tmp_path, "git-base", "unused")
    repo = make_repo(tmp_path / "repo", {
        "Dockerfile": f"FROM {kube_cluster.registry}/e2e/busybox:git-base\nARG FLAVOUR\n"
                      "RUN echo \"$FLAVOUR\" > /flavour\nCOPY version serve.sh /\nCMD [\"/bin/sh\", \"/serve.sh\"]\n",
        "version": "one\n", "serve.sh": SERVE})
    git = {"git": {"repo_clone_url": str(repo), "branch": "main"}, "dockerfile_path": "Dockerfile"}
    spec = {"name": unique_name("built"), "services": [{
        "name": "web", **git, "http_port": 8080, "envs": [{"key": "FLAVOUR", "value": "salty", "scope": "BUILD_TIME"}],
        "health_check": {"http_path": "/", "period_seconds": 1},
        "termination": {"drain_seconds": 1, "grace_period_seconds": 3}}],
        "jobs": [{"name": "migrate", "kind": "PRE_DEPLOY", **git, "run_command": 'echo "migrated to $(cat /version)"'}]}
    began = time.monotonic()
    created = client.apps.create(body={"spec": spec})["app"]
    first = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=600)
    assert first["phase"] == "ACTIVE", first["progress"]
    print(f"\ngit build + push + rollout to ACTIVE: {time.monotonic() - began:.1f} s")
    app = client.apps.get(created["id"])["app"]
    assert through_ingress(server, app).text == "one salty\n"
    [running] = pod_images(admin, created["id"])
    repository = f"{kube_cluster.registry}/shoal/{created['id']}-web"
    assert running.startswith(f"{repository}@sha256:")  # by digest, in the registry the cluster pulls from
    build = history(server, client.apps.get_logs_aggregate(created["id"], first["id"], type="BUILD"))
    assert f"Pushing {repository}:" in build
    deploy = history(server, client.apps.get_logs_aggregate(created["id"], first["id"], type="DEPLOY"))
    assert "migrated to one" in deploy  # the job ran its own image, built from the same repository

    # The same commit again: the image is found by its build key, and the registry has it already.
    began = time.monotonic()
    again = client.apps.create_deployment(created["id"], body={"force_build": False})["deployment"]
    assert wait_deployment(client, created["id"], again["id"], timeout=300)["phase"] == "ACTIVE"
    print(f"same commit again, to ACTIVE: {time.monotonic() - began:.1f} s")
    build = history(server, client.apps.get_logs_aggregate(created["id"], again["id"], type="BUILD"))
    assert "PreviousBuildReused" in build and "Pushing" not in build
    wait_for(lambda: pod_images(admin, created["id"]) == {running}, timeout=60)

    # A new commit: built, pushed, served.
    commit(tmp_path / "repo", "two", {"version": "two\n"})
    second = client.apps.create_deployment(created["id"], body={"force_build": False})["deployment"]
    assert wait_deployment(client, created["id"], second["id"], timeout=300)["phase"] == "ACTIVE"
    wait_for(lambda: through_ingress(server, app).text == "two salty\n", timeout=30)
    deploy = history(server, client.apps.get_logs_aggregate(created["id"], second["id"], type="DEPLOY"))
    assert "migrated to two" in deploy
    [newer] = wait_for(lambda: (found := pod_images(admin, created["id"])) != {running} and len(found) == 1
                       and found, timeout=60)
    assert newer.startswith(f"{repository}@sha256:") and newer != running

    # Rollback: the first deployment's commit is pinned, its build reused, its digest run again.
    rollback = client.apps.create_rollback(created["id"], body={"deployment_id": first["id"]})["deployment"]
    assert wait_deployment(client, created["id"], rollback["id"], timeout=300)["phase"] == "ACTIVE"
    wait_for(lambda: through_ingress(server, app).text == "one salty\n", timeout=30)
    wait_for(lambda: pod_images(admin, created["id"]) == {running}, timeout=60)

    # Deleting the app removes its namespace, the images shoal built for it on its host, and the ones
    # it pushed (before, the registry kept every tag of shoal/<app>-web and shoal/<app>-migrate).
    tags = f"http://{kube_cluster.registry}/v2/shoal/{created['id']}-web/tags/list"
    assert httpx.get(tags, timeout=10).json()["tags"]  # the two commits' images are there
    client.apps.delete(created["id"])
    core = kubernetes.client.CoreV1Api(admin)
    wait_for(lambda: not [n for n in core.list_namespace().items if n.metadata.name == f"shoal-{created['id']}"],
             timeout=180)
    assert local_images(f"label=shoal.app={created['id']}") == []
    for component in ("web", "migrate"):
        answer = httpx.get(f"http://{kube_cluster.registry}/v2/shoal/{created['id']}-{component}/tags/list",
                           timeout=10)
        assert answer.status_code == 404 or not answer.json().get("tags"), answer.text
    base = f"{kube_cluster.registry}/e2e/busybox:git-base"  # pulled by the build's FROM: the engine's cache
    subprocess.run(["podman", "rmi", "-f", base], capture_output=True, timeout=60)


def local_images(where: str) -> list[str]:
    listed = subprocess.run(["podman", "images", "-q", "--filter", where], capture_output=True, text=True,
                            timeout=60)
    return listed.stdout.split()
