"""A real one-node Kubernetes cluster for the tests: ``scripts/kube-dev-cluster`` up once per session.

The fixture lives in ``tests/conftest.py`` (one cluster for every package that needs it). It skips,
naming what is missing, only where the cluster cannot run: not root, or the Debian packages
``.ci/run`` installs are absent, or no Kubernetes binaries are at hand (neither ``SHOAL_KUBE_BINARIES``
nor ``../shared/kubernetes`` nor an earlier source build in the cache). At the end it runs ``down`` and
checks that nothing of the cluster is left: no process, mount, bridge or state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "kube-dev-cluster"
NEEDED = {"etcd": "etcd-server", "containerd": "containerd", "ctr": "containerd", "runc": "runc",
          "docker-registry": "docker-registry", "busybox": "busybox-static", "gcc": "gcc", "openssl": "openssl"}


@dataclass(frozen=True)
class KubeCluster:
    """A running cluster: its kubeconfig, its loopback registry and how long it took to start."""

    dir: Path
    kubeconfig: Path
    registry: str
    cold_start_seconds: float

    def push_image(self, reference: str, *files: str, busybox: bool = True) -> str:
        """Push a FROM-scratch image (busybox by default) to the registry; returns ``REGISTRY/NAME@sha256:..``."""
        args = [sys.executable, str(SCRIPT), "image", str(self.dir), reference,
                *(["--busybox"] if busybox else []), *(f"--file={f}" for f in files)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the cluster run last, so it starts late and lives no longer than they need it
    (about 640 MB and a few % of a core while up). Imported by tests/conftest.py, which makes it a hook."""
    uses = [item for item in items if "kube_cluster" in getattr(item, "fixturenames", ())]
    if uses:
        rest = [item for item in items if "kube_cluster" not in getattr(item, "fixturenames", ())]
        items[:] = rest + uses


def _binaries_at_hand() -> bool:
    if os.environ.get("SHOAL_KUBE_BINARIES"):
        return True
    if (ROOT.parent / "shared" / "kubernetes" / "kubernetes-1.20.2-linux-amd64.tar.xz").is_file():
        return True
    cache = Path(os.environ.get("SHOAL_CACHE_DIR") or Path.home() / ".cache" / "shoal") / "kube"
    return any((p / "bin" / "kubelet").is_file() for p in cache.glob("debian-source-*"))


def skip_reason() -> str | None:
    """Why the cluster cannot run here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "a Kubernetes cluster needs root on Linux"
    missing = sorted({pkg for tool, pkg in NEEDED.items()
                      if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None})
    if not Path("/usr/lib/cni/bridge").is_file():
        missing.append("containernetworking-plugins")
    if missing:
        return f"Debian packages missing (.ci/run installs them): {' '.join(missing)}"
    if not _binaries_at_hand():
        return ("no Kubernetes 1.20.2 binaries: set SHOAL_KUBE_BINARIES, or run `scripts/kube-dev-cluster up DIR` "
                "once to build them from Debian's source package (~12 min)")
    return None


def _leftovers(directory: Path, bridge: str) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(directory) in line.split()[4]:
            found.append(f"mount {line.split()[4]}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(directory) in argv:
                found.append(f"process {entry.name}: {argv.replace(chr(0), ' ')[:120]}")
    if Path("/sys/class/net", bridge).exists():
        found.append(f"bridge {bridge}")
    if directory.exists():
        found.append(f"directory {directory}")
    return found


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """One cluster for the session, removed (and checked removed) at its end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("kube") / "cluster"
    began = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPT), "up", str(directory)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"kube-dev-cluster up failed:\n{done.stdout}\n{done.stderr}"
    bridge = json.loads((directory / "state" / "cluster.json").read_text())["bridge"]
    cluster = KubeCluster(dir=directory, kubeconfig=directory / "kubeconfig",
                          registry=(directory / "registry").read_text().strip(),
                          cold_start_seconds=time.monotonic() - began)
    try:
        yield cluster
    finally:
        down = subprocess.run([sys.executable, str(SCRIPT), "down", str(directory)], capture_output=True,
                              text=True, timeout=300)
        assert down.returncode == 0, f"kube-dev-cluster down failed:\n{down.stdout}\n{down.stderr}"
        assert not _leftovers(directory, bridge), _leftovers(directory, bridge)


RBAC = ROOT / "deploy" / "kubernetes" / "rbac.yaml"


def rbac_kubeconfig(cluster: KubeCluster, directory: Path) -> Path:
    """A kubeconfig for the ``shoal`` service account of ``deploy/kubernetes/rbac.yaml`` (applied here):
    what an operator would hand shoal, so tests prove the manifest grants enough."""
    import base64

    import yaml
    from kubernetes import client, config, utils

    admin = config.new_client_from_config(str(cluster.kubeconfig))
    try:
        for doc in yaml.safe_load_all(RBAC.read_text()):
            try:
                utils.create_from_dict(admin, doc)
            except utils.FailToCreateError as exc:
                if not all(getattr(e, "status", None) == 409 for e in exc.api_exceptions):
                    raise
        core = client.CoreV1Api(admin)
        deadline = time.monotonic() + 60
        while not (secrets := core.read_namespaced_service_account("shoal", "shoal-system").secrets):
            assert time.monotonic() < deadline, "no token for the shoal service account"
            time.sleep(0.3)
        token_secret = core.read_namespaced_secret(str(secrets[0].name), "shoal-system")
        token = base64.b64decode((token_secret.data or {})["token"]).decode()
    finally:
        admin.close()
    settings = yaml.safe_load(cluster.kubeconfig.read_text())
    settings["users"] = [{"name": "shoal", "user": {"token": token}}]
    settings["contexts"][0]["context"]["user"] = "shoal"
    path = directory / "shoal.kubeconfig"
    path.write_text(yaml.safe_dump(settings))
    path.chmod(0o600)
    return path
