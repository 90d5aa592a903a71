"""The throwaway cluster of ``scripts/kube-dev-cluster`` does what the backend needs, through the official
client: images pushed to its loopback registry run, a Deployment serves HTTP reachable from the host, a Job
reads a Secret and completes, a CronJob (``batch/v1beta1`` on 1.20) ticks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kubecluster import SCRIPT, KubeCluster

kubernetes = pytest.importorskip("kubernetes")


def poll(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def api(kube_cluster: KubeCluster) -> Iterator[Any]:
    client = kubernetes.config.new_client_from_config(str(kube_cluster.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    core = kubernetes.client.CoreV1Api(api)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_a_deployment_from_the_loopback_registry_serves_http_to_the_host(
        kube_cluster: KubeCluster, api: Any, namespace: str) -> None:
    image = kube_cluster.push_image("smoke/web:1")
    assert image.startswith(kube_cluster.registry + "/smoke/web@sha256:")
    container = {"name": "web", "image": image, "ports": [{"containerPort": 8080}],
                 "command": ["/bin/sh", "-c", "mkdir /www && echo hello from a pod > /www/index.html"
                                              " && exec httpd -f -p 8080 -h /www"],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    kubernetes.client.AppsV1Api(api).create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}})
    core = kubernetes.client.CoreV1Api(api)

    def ready_ip() -> str | None:
        for pod in core.list_namespaced_pod(namespace, label_selector="app=web").items:
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                return str(pod.status.pod_ip)
        return None

    ip = poll("a ready web pod", ready_ip)
    assert httpx.get(f"http://{ip}:8080/", timeout=10).text == "hello from a pod\n"


def test_a_job_reads_a_secret_and_completes(api: Any, kube_cluster: KubeCluster, namespace: str) -> None:
    image = kube_cluster.push_image("smoke/job:1")
    core, batch = kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}})
    batch.create_namespaced_job(namespace, {"metadata": {"name": "reader"}, "spec": {"backoffLimit": 0, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "reader", "image": image, "command": ["/bin/sh", "-c", 'echo "file=$(cat /creds/token) env=$T"'],
            "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
            "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "creds"}}]}}}})
    poll("the job to succeed", lambda: batch.read_namespaced_job_status("reader", namespace).status.succeeded)
    pod = core.list_namespaced_pod(namespace, label_selector="job-name=reader").items[0]
    assert core.read_namespaced_pod_log(pod.metadata.name, namespace) == "file=s3cr3t env=s3cr3t\n"


@pytest.mark.timeout(300)
def test_a_cronjob_ticks(api: Any, kube_cluster: KubeCluster, namespace: str, tmp_path: Path) -> None:
    image = kube_cluster.push_image("smoke/cron:1")
    dynamic = kubernetes.dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))  # not in /tmp
    cronjobs = dynamic.resources.get(api_version="batch/v1beta1", kind="CronJob")
    cronjobs.create(namespace=namespace, body={
        "apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "tick", "image": image, "command": ["true"]}]}}}}}})
    batch = kubernetes.client.BatchV1Api(api)

    def a_finished_run() -> bool:
        jobs = batch.list_namespaced_job(namespace).items
        return any(j.status.succeeded and j.metadata.owner_references[0].name == "tick" for j in jobs)

    poll("a run of the CronJob to finish", a_finished_run, timeout=200)
    assert cronjobs.get(name="tick", namespace=namespace).status.lastScheduleTime


def test_a_second_up_in_the_same_dir_is_refused_and_status_names_the_daemons(kube_cluster: KubeCluster) -> None:
    again = subprocess.run([sys.executable, str(SCRIPT), "up", str(kube_cluster.dir)], capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 1 and "already runs" in again.stderr
    status = subprocess.run([sys.executable, str(SCRIPT), "status", str(kube_cluster.dir)], capture_output=True,
                            text=True, timeout=60)
    running = json.loads(status.stdout)["running"]
    assert set(running) == {"registry", "etcd", "containerd", "kube-apiserver", "kube-controller-manager",
                            "kube-scheduler", "kubelet"} and all(running.values())
