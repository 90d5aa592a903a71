"""``up``: start the one-node cluster in order, waiting for each part; ``down``: remove all of it.

Order of ``up`` (independent parts start together): registry, etcd and containerd → the pause image
pushed → kube-apiserver → controller-manager, scheduler and kubelet → node Ready and the default
service account's token. A failure anywhere runs ``down`` (unless asked to keep the wreck) and reports
what failed with the end of that daemon's log.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubedev import config, oci, procs, teardown
from kubedev.binaries import Programs, pause_binary, programs
from kubedev.procs import ClusterError, wait_until

PAUSE_REF = "shoal-dev/pause:1"
# Kubelet rewrites these at start (setupKernelTunables); ``down`` puts back what it found.
KERNEL_TUNABLES = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes")


def timeout() -> float:
    return float(os.environ.get("SHOAL_KUBE_TIMEOUT", "180"))


def _env() -> dict[str, str]:
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": f"{path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


class Api:
    """Just enough of the Kubernetes API for readiness checks (the stdlib only: no client installed yet)."""

    def __init__(self, layout: config.Layout, token: str) -> None:
        self.base = layout.server
        self.token = token
        self.tls = ssl.create_default_context(cafile=str(layout.state / "pki" / "ca.crt"))

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10, context=self.tls) as resp:
            body = resp.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bool(resp.status == 200)


def _start_base(layout: config.Layout, progs: Programs) -> None:
    """Registry, etcd and containerd: they need nothing but their config."""
    s, env = layout.state, _env()
    procs.start("registry", [str(progs.registry), "serve", str(config.write_registry_config(layout))], s, env)
    procs.start("etcd", [str(progs.etcd), "--name", "default", "--data-dir", str(s / "etcd"),
                         "--listen-client-urls", f"http://127.0.0.1:{layout.etcd_port}",
                         "--advertise-client-urls", f"http://127.0.0.1:{layout.etcd_port}",
                         "--listen-peer-urls", f"http://127.0.0.1:{layout.etcd_peer_port}",
                         "--initial-advertise-peer-urls", f"http://127.0.0.1:{layout.etcd_peer_port}",
                         "--initial-cluster", f"default=http://127.0.0.1:{layout.etcd_peer_port}",
                         "--log-level", "warn"], s, env)
    config.write_cni(layout)
    toml = config.write_containerd(layout, progs.cni_bin, f"{layout.registry}/{PAUSE_REF}")
    procs.start("containerd", [str(progs.containerd), "--config", str(toml)], s, env)


def _ctr(progs: Programs, layout: config.Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(progs.ctr), "--address", str(layout.containerd_socket), "-n", "k8s.io", *args],
                          capture_output=True, text=True, timeout=60)


def _wait_base(layout: config.Layout, progs: Programs) -> None:
    t, s = timeout(), layout.state
    wait_until("the registry to answer /v2/", lambda: _http_ok(f"http://{layout.registry}/v2/"), t, s, "registry")
    wait_until("etcd to report healthy",
               lambda: '"true"' in urllib.request.urlopen(f"http://127.0.0.1:{layout.etcd_port}/health",
                                                          timeout=5).read().decode(), t, s, "etcd")
    wait_until("containerd to answer", lambda: _ctr(progs, layout, "version").returncode == 0, t, s, "containerd")


def _start_apiserver(layout: config.Layout, progs: Programs) -> None:
    s, pki = layout.state, layout.state / "pki"
    procs.start("kube-apiserver", [
        str(progs.kube["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{layout.etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={layout.apiserver_port}",
        "--insecure-port=0", f"--cert-dir={pki}", f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc", "--api-audiences=https://kubernetes.default.svc",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--token-auth-file={s / 'tokens.csv'}", "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={config.SERVICE_CIDR}", "--endpoint-reconciler-type=none",
        "--allow-privileged=true", "--profiling=false", "--event-ttl=1h",
    ], s, _env())


def _start_controllers(layout: config.Layout, progs: Programs) -> None:
    s, pki, env = layout.state, layout.state / "pki", _env()
    common = ["--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--port=0"]
    procs.start("kube-controller-manager", [
        str(progs.kube["kube-controller-manager"]), f"--kubeconfig={s / 'kube-controller-manager.kubeconfig'}",
        *common, f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=false", "--profiling=false",
    ], s, env)
    procs.start("kube-scheduler", [
        str(progs.kube["kube-scheduler"]), f"--kubeconfig={s / 'kube-scheduler.kubeconfig'}", *common,
        "--profiling=false",
    ], s, env)
    kubelet = s / "kubelet"
    kubelet.mkdir(exist_ok=True)
    procs.start("kubelet", [
        str(progs.kube["kubelet"]), f"--kubeconfig={s / 'kubelet.kubeconfig'}", f"--root-dir={kubelet}",
        f"--cert-dir={kubelet / 'pki'}", f"--volume-plugin-dir={kubelet / 'volume-plugins'}",
        "--hostname-override=localhost", "--address=127.0.0.1", f"--port={layout.kubelet_port}",
        "--healthz-bind-address=127.0.0.1", f"--healthz-port={layout.kubelet_healthz_port}",
        "--container-runtime=remote", f"--container-runtime-endpoint=unix://{layout.containerd_socket}",
        f"--containerd={layout.containerd_socket}",  # cAdvisor's own client: the default path costs a 5 s timeout
        "--cgroup-driver=cgroupfs", "--cgroups-per-qos=false", "--enforce-node-allocatable=",
        "--fail-swap-on=false", "--eviction-hard=", "--read-only-port=0", "--anonymous-auth=true",
        "--authorization-mode=AlwaysAllow", f"--pod-infra-container-image={layout.registry}/{PAUSE_REF}",
        "--make-iptables-util-chains=false", "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
        "--serialize-image-pulls=false", "--node-status-update-frequency=4s",
    ], s, env)


def _node_ready(api: Api) -> bool:
    node = api.get("/api/v1/nodes/localhost")
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def _default_account_ready(api: Api) -> bool:
    account = api.get("/api/v1/namespaces/default/serviceaccounts/default")
    return bool(account.get("secrets"))


class Stopwatch:
    """Laps for the summary line: where a cold start spends its time."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.laps: list[str] = []

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        self.laps.append(f"{what} {now - self.last:.1f} s")
        self.last = now


def _snapshot_tunables() -> dict[str, str]:
    found = {}
    for name in KERNEL_TUNABLES:
        try:
            found[name] = Path("/proc/sys", name).read_text().strip()
        except OSError:
            continue
    return found


def _write_outputs(layout: config.Layout, directory: Path) -> None:
    admin = (layout.state / "admin.kubeconfig").read_text()
    (directory / "kubeconfig").write_text(admin)
    (directory / "kubeconfig").chmod(0o600)
    (directory / "registry").write_text(layout.registry + "\n")


def up(directory: Path, keep_on_failure: bool = False) -> float:
    """Start a cluster in ``directory``; returns the seconds it took. Raises ClusterError."""
    directory = directory.resolve()
    if os.geteuid() != 0:
        raise ClusterError("kube-dev-cluster needs root (containerd, kubelet, network namespaces)")
    if (existing := config.Layout.load(directory)) is not None:
        if any(procs.running(existing.state, n) for n in teardown.DAEMONS):
            raise ClusterError(f"a cluster already runs in {directory}: `kube-dev-cluster down {directory}` first")
        teardown.down(directory)
    began = time.monotonic()
    progs, pause = programs(), pause_binary()
    directory.mkdir(parents=True, exist_ok=True)
    layout = config.new_layout(directory)
    layout.sysctls = _snapshot_tunables()
    layout.save()
    try:
        _bring_up(layout, progs, pause)
        _write_outputs(layout, directory)
    except BaseException:
        if not keep_on_failure:
            teardown.down(directory)
        raise
    return time.monotonic() - began


def _bring_up(layout: config.Layout, progs: Programs, pause: Path) -> None:
    t, s = timeout(), layout.state
    mark = Stopwatch()
    config.write_pki(layout)
    tokens = config.write_tokens(layout)
    config.write_kubeconfigs(layout, tokens)
    mark("keys")
    _start_base(layout, progs)
    _wait_base(layout, progs)
    oci.push(layout.registry, PAUSE_REF, oci.ImageSpec(files={"/pause": pause}, entrypoint=["/pause"], env=[]))
    mark("registry, etcd, containerd, pause image")
    _start_apiserver(layout, progs)
    api = Api(layout, tokens["admin"])
    wait_until("kube-apiserver /readyz", lambda: api.get("/readyz") == "ok", t, s, "kube-apiserver")
    mark("apiserver")
    _start_controllers(layout, progs)
    wait_until("node localhost to be Ready", lambda: _node_ready(api), t, s, "kubelet")
    mark("node Ready")
    wait_until("the default service account's token (kube-controller-manager)",
               lambda: _default_account_ready(api), t, s, "kube-controller-manager")
    mark("service account")
    print("kube-dev-cluster: " + ", ".join(mark.laps), flush=True)
    for daemon in ("kube-scheduler", "containerd", "registry", "etcd"):
        if procs.running(s, daemon) is None:
            raise ClusterError(f"{daemon} exited; its log ends:\n{procs.log_tail(s / 'logs' / f'{daemon}.log')}")


def status(directory: Path) -> dict[str, Any]:
    layout = config.Layout.load(directory.resolve())
    if layout is None:
        return {"dir": str(directory), "running": {}}
    return {"dir": layout.dir, "registry": layout.registry, "server": layout.server,
            "running": {n: procs.running(layout.state, n) for n in teardown.DAEMONS}}


def push_image(directory: Path, reference: str, files: dict[str, Path], busybox: bool,
               entrypoint: list[str], cmd: list[str], env: list[str]) -> str:
    """Push a FROM-scratch image of ``files`` (and busybox when asked) to the cluster's registry."""
    layout = config.Layout.load(directory.resolve())
    if layout is None:
        raise ClusterError(f"no cluster in {directory}")
    spec = oci.ImageSpec()
    if busybox:
        found = shutil.which("busybox") or "/bin/busybox"
        spec = oci.busybox_spec(Path(found))
    spec.files.update(files)
    spec.entrypoint = entrypoint or spec.entrypoint
    spec.cmd = cmd or spec.cmd
    spec.env = env or spec.env
    return oci.push(layout.registry, reference, spec)
