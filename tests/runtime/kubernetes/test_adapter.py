"""The Kubernetes adapter layer against the real one-node 1.20 cluster: connecting, discovery, idempotent
apply (server-side and create/replace), convergence watches, namespaces, pod logs, endpoints."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kubecluster import KubeCluster

pytest.importorskip("kubernetes")

from shoal.runtime.kubernetes.apply import Applier, Ref  # noqa: E402
from shoal.runtime.kubernetes.connection import Kube, Target  # noqa: E402
from shoal.runtime.kubernetes.discovery import Catalog  # noqa: E402
from shoal.runtime.kubernetes.endpoints import Address, watch_endpoints  # noqa: E402
from shoal.runtime.kubernetes.errors import GiveUp, RetryIn  # noqa: E402
from shoal.runtime.kubernetes.logs import pod_log, pods  # noqa: E402
from shoal.runtime.kubernetes.namespaces import (  # noqa: E402
    APP_ID, MANAGED_BY, delete_namespace, ensure_namespace, namespace_name, shoal_namespaces)
from shoal.runtime.kubernetes.watch import converge, deployment_rollout, job_finished  # noqa: E402


@pytest.fixture(scope="module")
def kube(kube_cluster: KubeCluster) -> Iterator[Kube]:
    connection = Kube(Target(kube_cluster.kubeconfig))
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def catalog(kube: Kube) -> Catalog:
    return Catalog(kube)


@pytest.fixture(scope="module")
def image(kube_cluster: KubeCluster) -> str:
    return kube_cluster.push_image("adapter/busybox:1")


@pytest.fixture(params=[True, False], ids=["server-side-apply", "create-replace"])
def applier(request: pytest.FixtureRequest, kube: Kube, catalog: Catalog) -> Applier:
    return Applier(kube, catalog, server_side=request.param)


@pytest.fixture
def namespace(kube: Kube, catalog: Catalog) -> Iterator[str]:
    """A fresh namespace (an app's, as shoal names it), deleted afterwards without waiting."""
    app_id = str(uuid.uuid4())
    applier = Applier(kube, catalog)
    ensure_namespace(applier, app_id, "test-app", "tester")
    yield namespace_name(app_id)
    applier.delete(Ref("v1", "Namespace", None, namespace_name(app_id)))


def web_deployment(namespace: str, image: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    container = {"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
                 "command": ["/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html"
                                              " && exec httpd -f -p 8080 -h /www"],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxUnavailable": 0}}, **extra,
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


def test_discovery_picks_what_a_1_20_server_offers(catalog: Catalog) -> None:
    versions = catalog.versions()
    assert versions.server == (1, 20)
    assert versions.cronjob == "batch/v1beta1"
    assert versions.hpa == "autoscaling/v2beta2"
    assert versions.ingress == "networking.k8s.io/v1"
    assert versions.server_side_apply and not versions.cronjob_time_zone
    assert catalog.kind("batch/v1beta1", "CronJob").path("ns", "c") == "/apis/batch/v1beta1/namespaces/ns/cronjobs/c"
    with pytest.raises(GiveUp, match="does not serve CronJob in batch/v1"):
        catalog.kind("batch/v1", "CronJob")


def test_a_kubeconfig_that_cannot_be_used_is_named(tmp_path: Path, kube_cluster: KubeCluster) -> None:
    with pytest.raises(GiveUp, match="nowhere.yaml"):
        Kube(Target(tmp_path / "nowhere.yaml"))
    with pytest.raises(GiveUp, match="context 'elsewhere'"):
        Kube(Target(kube_cluster.kubeconfig, "elsewhere"))


def test_applying_twice_changes_nothing_and_a_change_is_applied(applier: Applier, namespace: str) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace,
                                                                     "labels": {"a": "1"}}, "data": {"k": "v"}}
    service: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    first = applier.apply_all([config, service])
    again = applier.apply_all([config, service])
    assert [o["metadata"]["resourceVersion"] for o in again] == [o["metadata"]["resourceVersion"] for o in first]
    changed = applier.apply({**config, "data": {"k": "w"}})
    assert changed["data"] == {"k": "w"}
    assert changed["metadata"]["resourceVersion"] != first[0]["metadata"]["resourceVersion"]
    moved = applier.apply({**service, "spec": {**service["spec"], "ports": [{"name": "http", "port": 81,
                                                                              "targetPort": 8080}]}})
    assert moved["spec"]["clusterIP"] == first[1]["spec"]["clusterIP"]  # kept across a replace
    assert moved["spec"]["ports"][0]["port"] == 81


def test_an_invalid_object_gives_up_naming_the_field(applier: Applier, namespace: str, image: str) -> None:
    bad = web_deployment(namespace, image)
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    with pytest.raises(GiveUp, match=r"spec\.template\.spec\.containers\[0\]\.name"):
        applier.apply(bad)


def test_a_write_that_raced_another_says_retry(kube: Kube, catalog: Catalog, namespace: str) -> None:
    applier = Applier(kube, catalog, server_side=False)
    live = applier.apply({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "raced", "namespace": namespace}, "data": {"n": "1"}})
    applier.apply({**live, "data": {"n": "2"}, "metadata": {"name": "raced", "namespace": namespace}})
    stale = {**live, "data": {"n": "3"}}  # still carries the first resourceVersion
    with pytest.raises(RetryIn) as raised:
        kube.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/raced", body=stale)
    assert raised.value.status == 409 and raised.value.seconds > 0


def test_a_rollout_converges_and_its_progress_is_reported(kube: Kube, catalog: Catalog, namespace: str,
                                                          image: str) -> None:
    applier = Applier(kube, catalog)
    applier.apply(web_deployment(namespace, image, replicas=2))
    said: list[str] = []
    done = converge(kube, catalog, Ref("apps/v1", "Deployment", namespace, "web"), deployment_rollout, 120,
                    on_progress=said.append)
    assert done is not None and done["status"]["availableReplicas"] == 2
    assert said[-1] == "2 of 2 replicas available"


def test_a_rollout_that_cannot_progress_gives_up(kube: Kube, catalog: Catalog, namespace: str,
                                                 kube_cluster: KubeCluster) -> None:
    applier = Applier(kube, catalog)
    missing = f"{kube_cluster.registry}/adapter/no-such-image:1"
    applier.apply(web_deployment(namespace, missing, progressDeadlineSeconds=5))
    with pytest.raises(GiveUp, match="rollout stalled"):
        converge(kube, catalog, Ref("apps/v1", "Deployment", namespace, "web"), deployment_rollout, 120)


def job(namespace: str, image: str, script: str, name: str = "task") -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "task", "image": image, "command": ["/bin/sh", "-c", script]}]}}}}


def test_jobs_converge_to_complete_or_give_up_with_the_reason(kube: Kube, catalog: Catalog, namespace: str,
                                                              image: str) -> None:
    applier = Applier(kube, catalog)
    applier.apply_all([job(namespace, image, "exit 0", "ok"), job(namespace, image, "exit 3", "broken")])
    assert converge(kube, catalog, Ref("batch/v1", "Job", namespace, "ok"), job_finished, 120) is not None
    with pytest.raises(GiveUp, match="BackoffLimitExceeded"):
        converge(kube, catalog, Ref("batch/v1", "Job", namespace, "broken"), job_finished, 120)


def test_converge_says_retry_when_time_is_up(kube: Kube, catalog: Catalog, namespace: str, image: str) -> None:
    Applier(kube, catalog).apply(job(namespace, image, "sleep 30", "slow"))
    with pytest.raises(RetryIn, match="not converged after 2 s"):
        converge(kube, catalog, Ref("batch/v1", "Job", namespace, "slow"), job_finished, 2)


def test_namespace_lifecycle_with_labels(kube: Kube, catalog: Catalog) -> None:
    applier = Applier(kube, catalog)
    app_id = str(uuid.uuid4())
    live = ensure_namespace(applier, app_id, "My App", "alice@example.com")
    labels = live["metadata"]["labels"]
    assert labels[MANAGED_BY] == "shoal" and labels[APP_ID] == app_id
    assert labels["shoal.dev/account"].startswith("alice-example.com-")
    assert ensure_namespace(applier, app_id, "My App", "alice@example.com")["metadata"]["resourceVersion"] == \
        live["metadata"]["resourceVersion"]
    assert namespace_name(app_id) in {n["metadata"]["name"] for n in shoal_namespaces(applier)}
    applier.apply({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "x", "namespace": namespace_name(app_id)}, "data": {}})
    assert delete_namespace(applier, app_id) is True
    assert applier.get(Ref("v1", "Namespace", None, namespace_name(app_id))) is None
    assert delete_namespace(applier, app_id) is False


def test_pod_logs_are_read_and_followed_as_they_are_written(kube: Kube, catalog: Catalog, namespace: str,
                                                           image: str) -> None:
    script = "echo first; for i in 1 2 3; do sleep 1; echo line $i; done"
    Applier(kube, catalog).apply(job(namespace, image, script, "talker"))

    def running_pod() -> str | None:
        found = pods(kube, namespace, "job-name=talker")
        return found[0]["metadata"]["name"] if found and found[0]["status"].get("phase") in (
            "Running", "Succeeded") else None

    pod = wait(running_pod)
    seen: list[tuple[float, str]] = []
    with pod_log(kube, namespace, pod, follow=True) as stream:
        for line in stream:
            seen.append((time.monotonic(), line))
    assert [line for _, line in seen] == ["first", "line 1", "line 2", "line 3"]
    assert seen[-1][0] - seen[0][0] > 1.5  # followed while written, not read at the end
    assert list(pod_log(kube, namespace, pod, tail_lines=1)) == ["line 3"]


def wait(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return found


def test_endpoints_follow_ready_pods(kube: Kube, catalog: Catalog, namespace: str, image: str) -> None:
    applier = Applier(kube, catalog)
    applier.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                   "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    seen: list[tuple[Address, ...]] = []
    stop = threading.Event()

    def collect() -> None:
        for snapshot in watch_endpoints(kube, namespace, "web", stop):
            seen.append(snapshot)

    watcher = threading.Thread(target=collect)
    watcher.start()
    try:
        applier.apply(web_deployment(namespace, image, replicas=2))
        two = wait(lambda: next((s for s in seen if len(s) == 2), None))
        answers = {httpx.get(f"http://{a.ip}:{a.port}/", timeout=10).text.strip() for a in two}
        assert answers == {a.pod for a in two}  # each address is its own pod (httpd serves its hostname)
        applier.apply(web_deployment(namespace, image, replicas=0))
        wait(lambda: len(seen) > 1 and seen[-1] == ())
    finally:
        stop.set()
        watcher.join(30)
    assert not watcher.is_alive()
    assert seen[0] == ()


def test_the_rbac_manifest_grants_what_the_backend_does_and_no_more(kube_cluster: KubeCluster, tmp_path: Path,
                                                                   image: str) -> None:
    from tests.kubecluster import rbac_kubeconfig

    limited = Kube(Target(rbac_kubeconfig(kube_cluster, tmp_path)))
    try:
        catalog = Catalog(limited)
        applier = Applier(limited, catalog)
        app_id = str(uuid.uuid4())
        ns = ensure_namespace(applier, app_id, "rbac", "tester")["metadata"]["name"]
        versions = catalog.versions()
        labels = {"app": "web"}
        applier.apply_all([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": ns},
             "stringData": {"k": "v"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}, "data": {}},
            web_deployment(ns, image),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
             "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
            job(ns, image, "echo done"),
            {"apiVersion": versions.cronjob, "kind": "CronJob", "metadata": {"name": "cron", "namespace": ns},
             "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": job(ns, image, "true")["spec"]}}},
            {"apiVersion": versions.hpa, "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": ns},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                      "minReplicas": 1, "maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {
                          "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}},
            {"apiVersion": versions.ingress, "kind": "Ingress", "metadata": {"name": "web", "namespace": ns},
             "spec": {"rules": [{"host": "web.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
        ])
        converge(limited, catalog, Ref("batch/v1", "Job", ns, "task"), job_finished, 120)
        pod = pods(limited, ns, "job-name=task")[0]["metadata"]["name"]
        assert list(pod_log(limited, ns, pod)) == ["done"]
        converge(limited, catalog, Ref("apps/v1", "Deployment", ns, "web"), deployment_rollout, 120)
        assert limited.request("GET", f"/api/v1/namespaces/{ns}/endpoints/web")["subsets"]
        with pytest.raises(GiveUp) as refused:  # nothing beyond the manifest: no RBAC of its own
            limited.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                            body={"metadata": {"name": "escalate"}, "rules": []})
        assert refused.value.status == 403
        assert delete_namespace(applier, app_id)
    finally:
        limited.close()


def test_the_kubeconfig_ca_is_kept_in_memory_not_left_in_tmp(kube_cluster: KubeCluster) -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).iterdir())
    with Kube(Target(kube_cluster.kubeconfig)) as connection:
        assert connection.request("GET", "/version")["major"] == "1"  # TLS verified against the CA
        assert connection.request("GET", "/version")["minor"] == "20"  # and again, after the loader's refresh hook
    left = [p for p in set(Path(tempfile.gettempdir()).iterdir()) - before
            if p.is_file() and p.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")]
    assert left == []
