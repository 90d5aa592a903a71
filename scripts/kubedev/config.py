"""The cluster's files: its layout (ports, subnet, bridge), keys and certificates, tokens, kubeconfigs,
and the configs of containerd, CNI and the registry. Everything lives under ``DIR/state``.

The flags and settings are the ones measured to work here (cgroups v1, no systemd, root without
CAP_SYS_RESOURCE): see ``../shared/reference/containers-and-kubernetes-here.md``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubedev.procs import ClusterError

SERVICE_CIDR = "10.96.0.0/16"
# Pod subnets are /24s taken from here; one not routed on this host yet is chosen per cluster.
POD_POOL = ipaddress.IPv4Network("10.244.0.0/16")
CONTEXT = "shoal-dev"
# Paths outside DIR that kubelet 1.20 and containerd 1.6 create whatever their flags say; ``down`` removes
# the ones that ``up`` saw absent, unless another kubelet or containerd is running then.
SHARED_PATHS = ["/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/run/containerd",
                *(str(p / "k8s.io") for p in sorted(Path("/sys/fs/cgroup").glob("*")) if p.is_dir())]


@dataclass
class Layout:
    """What ``up`` chose and ``down`` needs: written to ``state/cluster.json`` before anything starts."""

    dir: str
    etcd_port: int
    etcd_peer_port: int
    apiserver_port: int
    registry_port: int
    kubelet_port: int
    kubelet_healthz_port: int
    pod_subnet: str
    bridge: str
    sysctls: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)  # host paths outside DIR that did not exist before ``up`` (kubelet and containerd make them)

    @property
    def state(self) -> Path:
        return Path(self.dir) / "state"

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "cluster.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path) -> Layout | None:
        try:
            return cls(**json.loads((directory / "state" / "cluster.json").read_text()))
        except FileNotFoundError:
            return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _routed() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes now (except the default route)."""
    nets = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        dest, mask = (ipaddress.IPv4Address(bytes.fromhex(f)[::-1]) for f in (fields[1], fields[7]))
        if int(mask):
            nets.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return nets


def new_layout(directory: Path) -> Layout:
    """Fresh ports, a pod /24 no route on this host overlaps, and a bridge name unique to ``directory``."""
    key = hashlib.sha256(str(directory).encode()).hexdigest()
    routed = _routed()
    subnets = list(POD_POOL.subnets(new_prefix=24))
    start = int(key[:4], 16) % len(subnets)
    subnet = next((s for s in subnets[start:] + subnets[:start] if not any(s.overlaps(r) for r in routed)), None)
    if subnet is None:
        raise ClusterError(f"every /24 of {POD_POOL} is already routed on this host")
    return Layout(dir=str(directory), etcd_port=free_port(), etcd_peer_port=free_port(),
                  apiserver_port=free_port(), registry_port=free_port(), kubelet_port=free_port(),
                  kubelet_healthz_port=free_port(), pod_subnet=str(subnet), bridge=f"shoal{key[:8]}",
                  sysctls={}, created=[p for p in SHARED_PATHS if not Path(p).exists()])


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])} failed: {done.stderr.strip()}")


def write_pki(layout: Layout) -> None:
    """A CA, the apiserver's serving certificate (loopback and in-cluster names) and the SA key pair."""
    pki = layout.state / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=shoal-dev-cluster-ca", cwd=pki)
    (pki / "apiserver.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:127.0.0.1,IP:{service_ip},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
             "-subj", "/CN=kube-apiserver", cwd=pki)
    _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "apiserver.crt", "-days", "3650", "-extfile", "apiserver.ext", cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


USERS = ("admin", "kube-controller-manager", "kube-scheduler", "kubelet")


def write_tokens(layout: Layout) -> dict[str, str]:
    """A static token per user (all in system:masters: a throwaway dev cluster, not a secure one)."""
    tokens = {user: secrets.token_hex(24) for user in USERS}
    lines = [f'{token},{user},{user},"system:masters"' for user, token in tokens.items()]
    (layout.state / "tokens.csv").write_text("\n".join(lines) + "\n")
    (layout.state / "tokens.csv").chmod(0o600)
    return tokens


def kubeconfig(layout: Layout, user: str, token: str) -> str:
    ca = base64.b64encode((layout.state / "pki" / "ca.crt").read_bytes()).decode()
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": CONTEXT,
        "clusters": [{"name": CONTEXT, "cluster": {"server": layout.server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user, "namespace": "default"}}],
    }, indent=2) + "\n"


def write_kubeconfigs(layout: Layout, tokens: dict[str, str]) -> None:
    for user, token in tokens.items():
        path = layout.state / f"{user}.kubeconfig"
        path.write_text(kubeconfig(layout, user, token))
        path.chmod(0o600)


def write_registry_config(layout: Layout) -> Path:
    root = layout.state / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    path = root / "config.yml"
    path.write_text(json.dumps({  # YAML is a superset of JSON
        "version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": layout.registry}}, indent=2))
    return path


def write_cni(layout: Layout) -> None:
    """One bridge network, host-local IPAM kept under the state dir, no masquerade (so no iptables rules)."""
    confdir = layout.state / "cni" / "net.d"
    confdir.mkdir(parents=True, exist_ok=True)
    (confdir / "10-shoal-dev.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": f"shoal-dev-{layout.bridge}",
        "plugins": [{"type": "bridge", "bridge": layout.bridge, "isGateway": True, "ipMasq": False,
                     "hairpinMode": True,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": layout.pod_subnet}]],
                              "dataDir": str(layout.state / "cni" / "ipam")}}]}, indent=2))


def write_containerd(layout: Layout, cni_bin: Path, sandbox_image: str) -> Path:
    """containerd 1.6 with its own paths, runc v2 on cgroupfs, and the loopback registry over plain HTTP."""
    c = layout.state / "containerd"
    hosts = c / "certs.d" / layout.registry
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(
        f'server = "http://{layout.registry}"\n\n[host."http://{layout.registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n')
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    path = c / "config.toml"
    path.write_text(f"""version = 2
root = "{c / 'root'}"
state = "{c / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / 'opt'}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{c / 'runc'}"
  [{cri}.cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{layout.state / 'cni' / 'net.d'}"
  [{cri}.registry]
    config_path = "{c / 'certs.d'}"
""")
    return path
