"""Where the cluster's programs come from, and the cache that keeps slow setup out of the clone.

Kubernetes 1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet), in this order:
``SHOAL_KUBE_BINARIES`` (a directory holding them, or a ``.tar.xz`` of them), else
``../shared/kubernetes/`` beside the repository (its ``SHA256SUMS`` checked), else built from Debian's
``kubernetes`` source package with Debian's Go (~12 min on 2 cores; see
``../shared/reference/containers-and-kubernetes-here.md``). Unpacked and built binaries live in
``~/.cache/shoal/kube/`` (``SHOAL_CACHE_DIR`` overrides ``~/.cache/shoal``) under a key naming their
recipe, so a second ``up`` starts at once and a changed recipe never reuses a stale build.

Everything else comes from Debian packages (``.ci/run`` installs them): etcd-server, containerd, runc,
containernetworking-plugins, docker-registry, busybox-static, gcc (for the pause binary).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubedev.procs import ClusterError

KUBE_PROGRAMS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
KUBE_VERSION = "1.20.2"
ARCHIVE = f"kubernetes-{KUBE_VERSION}-linux-amd64.tar.xz"
HERE = Path(__file__).resolve().parent
SHARED_KUBE = HERE.parents[2] / "shared" / "kubernetes"
CNI_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
# Debian 12's source package ships reflect2 1.0.1 in vendor/, which crashes on Go >= 1.18; 1.0.2 fixes it.
SOURCE_RECIPE = f"debian-source-kubernetes-{KUBE_VERSION}+reflect2-1.0.2+cgo0-v1"


@dataclass(frozen=True)
class Programs:
    """Absolute paths of every program the cluster runs."""

    kube: dict[str, Path]
    etcd: Path
    containerd: Path
    ctr: Path
    runc: Path
    registry: Path
    busybox: Path
    cni_bin: Path


def cache_root() -> Path:
    base = os.environ.get("SHOAL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "shoal")
    return Path(base) / "kube"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _complete(directory: Path) -> dict[str, Path] | None:
    found = {name: directory / name for name in KUBE_PROGRAMS}
    if all(path.is_file() and os.access(path, os.X_OK) for path in found.values()):
        return found
    return None


def _unpacked(archive: Path, digest: str) -> dict[str, Path]:
    """Unpack ``archive`` once into the cache under its digest; a half-unpacked try is never used."""
    target = cache_root() / f"archive-{digest[:16]}"
    if (ready := _complete(target)) is not None:
        return ready
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(scratch, filter="data")
        for name in KUBE_PROGRAMS:
            hits = sorted(scratch.rglob(name))
            if not hits:
                raise ClusterError(f"{archive} holds no {name} (it must hold {', '.join(KUBE_PROGRAMS)})")
            hits[0].chmod(0o755)
            hits[0].rename(scratch / name)
        shutil.rmtree(target, ignore_errors=True)
        (scratch / "SOURCE").write_text(f"{archive}\nsha256 {digest}\n")
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found = _complete(target)
    assert found is not None
    return found


def _shared_archive() -> dict[str, Path] | None:
    archive = SHARED_KUBE / ARCHIVE
    if not archive.is_file():
        return None
    sums = SHARED_KUBE / "SHA256SUMS"
    expected = {line.split()[1].lstrip("*"): line.split()[0]
                for line in sums.read_text().splitlines() if len(line.split()) == 2} if sums.is_file() else {}
    if ARCHIVE not in expected:
        raise ClusterError(f"{sums} does not list {ARCHIVE}; refusing an unchecked archive")
    digest = sha256_file(archive)
    if digest != expected[ARCHIVE]:
        raise ClusterError(f"{archive} has sha256 {digest}, but {sums} says {expected[ARCHIVE]}")
    return _unpacked(archive, digest)


def kube_programs() -> dict[str, Path]:
    """The four Kubernetes programs, found, unpacked or built as the module docstring says."""
    chosen = os.environ.get("SHOAL_KUBE_BINARIES")
    if chosen:
        path = Path(chosen).expanduser()
        if path.is_dir():
            found = _complete(path)
            if found is None:
                raise ClusterError(f"SHOAL_KUBE_BINARIES={path} lacks one of {', '.join(KUBE_PROGRAMS)}")
            return found
        if path.is_file():
            return _unpacked(path, sha256_file(path))
        raise ClusterError(f"SHOAL_KUBE_BINARIES={path} is neither a directory nor a .tar.xz")
    return _shared_archive() or build_from_source()


def _require(name: str, package: str, *extra: Path) -> Path:
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin",
                                                      "/sbin", "/bin", *map(str, extra)]))
    if found is None:
        raise ClusterError(f"{name} not found: install Debian's {package} (`apt-get install -y {package}`)")
    return Path(found)


def programs() -> Programs:
    """Every program the cluster needs, or a ClusterError naming the package to install."""
    cni = next((d for d in CNI_DIRS if (d / "bridge").is_file() and (d / "host-local").is_file()), None)
    if cni is None:
        raise ClusterError("no CNI bridge plugin: install Debian's containernetworking-plugins")
    busybox = _require("busybox", "busybox-static")
    if b"/ld-linux" in busybox.read_bytes()[:8192]:  # a dynamic ELF names its loader near the start
        raise ClusterError(f"{busybox} is not static: install Debian's busybox-static")
    return Programs(kube=kube_programs(), etcd=_require("etcd", "etcd-server"),
                    containerd=_require("containerd", "containerd"), ctr=_require("ctr", "containerd"),
                    runc=_require("runc", "runc"), registry=_require("docker-registry", "docker-registry"),
                    busybox=busybox, cni_bin=cni)


def pause_binary() -> Path:
    """The static pause program (``pause.c`` beside this file), compiled once per source and compiler."""
    source = HERE / "pause.c"
    compiler = _require("gcc", "gcc")
    version = subprocess.run([str(compiler), "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(source.read_bytes() + version.encode()).hexdigest()[:16]
    target = cache_root() / f"pause-{key}" / "pause"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_suffix(".tmp")
    done = subprocess.run([str(compiler), "-static", "-Os", "-s", "-o", str(scratch), str(source)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"compiling the pause binary failed (needs libc6-dev for -static):\n{done.stderr}")
    scratch.rename(target)
    return target


def build_from_source() -> dict[str, Path]:
    """Build the four programs from Debian 12's ``kubernetes`` source package (slow: ~12 min, once)."""
    target = cache_root() / SOURCE_RECIPE
    if (ready := _complete(target / "bin")) is not None:
        return ready
    from kubedev.source_build import build

    print(f"kube-dev-cluster: no prebuilt Kubernetes binaries (SHOAL_KUBE_BINARIES unset, {SHARED_KUBE} absent);"
          f" building them from Debian's source package into {target} (about 12 minutes on 2 cores)",
          flush=True)
    build(target, KUBE_PROGRAMS, KUBE_VERSION)
    found = _complete(target / "bin")
    if found is None:
        raise ClusterError(f"the source build finished without {', '.join(KUBE_PROGRAMS)} in {target / 'bin'}")
    return found
