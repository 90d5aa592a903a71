"""``down``: remove what ``up`` made in DIR, and nothing else.

Order matters: the controllers and the kubelet stop first so nothing restarts pods; then every
containerd task is killed and every container deleted while containerd still runs; then containerd,
any shim or container process still bound to *this* containerd (found by its socket address or by a
root inside this state dir), the pods' network namespaces and the CNI bridge, every mount under the
state dir, the API side (apiserver, etcd, registry), the kubelet's kernel tunables put back, the
pods' log dirs in ``/var/log/pods`` and ``/var/log/containers``, and last the state dir itself.
Each step tolerates a part that never started, so ``down`` also cleans up after a failed ``up``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from kubedev import config, procs

DAEMONS = ("registry", "etcd", "containerd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
           "kubelet")


def _ctr(layout: config.Layout, *args: str) -> list[str]:
    ctr = shutil.which("ctr") or "/usr/bin/ctr"
    done = subprocess.run([ctr, "--address", str(layout.containerd_socket), "-n", "k8s.io", *args],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.split() if done.returncode == 0 else []


def _remove_containers(layout: config.Layout) -> None:
    """Kill every task and delete every container (sandboxes included) through containerd itself."""
    if procs.running(layout.state, "containerd") is None:
        return
    for cid in _ctr(layout, "tasks", "ls", "-q"):
        _ctr(layout, "tasks", "kill", "-a", "-s", "SIGKILL", cid)
    for cid in _ctr(layout, "tasks", "ls", "-q"):
        _ctr(layout, "tasks", "delete", "-f", cid)
    for cid in _ctr(layout, "containers", "ls", "-q"):
        _ctr(layout, "containers", "delete", cid)


def _ours(pid: int, layout: config.Layout) -> bool:
    """A shim started by this containerd, or a process whose root lies under this state dir."""
    argv = procs.cmdline(pid)
    if any(a.startswith("containerd-shim") or a.endswith("/containerd-shim-runc-v2") for a in argv[:1]):
        if str(layout.containerd_socket) in argv:
            return True
    try:
        root = os.readlink(f"/proc/{pid}/root")
    except OSError:
        return False
    return root.startswith(str(layout.state) + "/")


def _kill_leftovers(layout: config.Layout) -> None:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me and _ours(int(entry.name), layout):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _mounts_under(root: Path) -> list[str]:
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == str(root) or point.startswith(str(root) + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def _unmount_all(root: Path) -> None:
    for _ in range(3):  # a mount can hide another at the same point
        points = _mounts_under(root)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)


def _remove_bridge(layout: config.Layout) -> None:
    if Path("/sys/class/net", layout.bridge).exists():
        subprocess.run(["ip", "link", "delete", layout.bridge], capture_output=True)


def _restore_tunables(layout: config.Layout) -> None:
    for name, value in layout.sysctls.items():
        path = Path("/proc/sys", name)
        try:
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
        except OSError:
            continue


def _remove_pod_logs(layout: config.Layout) -> None:
    """Kubelet 1.20 always logs to /var/log/pods/NS_NAME_UID: remove only our pods' dirs and links."""
    pods = layout.state / "kubelet" / "pods"
    uids = {p.name for p in pods.iterdir()} if pods.is_dir() else set()
    ours: set[str] = set()
    logs = Path("/var/log/pods")
    for entry in logs.iterdir() if logs.is_dir() and uids else []:
        if entry.name.rsplit("_", 1)[-1] in uids:
            ours.add(str(entry))
            shutil.rmtree(entry, ignore_errors=True)
    links = Path("/var/log/containers")
    for link in links.iterdir() if links.is_dir() and ours else []:
        if link.is_symlink() and any(os.readlink(link).startswith(p + "/") for p in ours):
            link.unlink(missing_ok=True)


def _others_running(layout: config.Layout) -> bool:
    """Another kubelet or containerd (not this cluster's) would still use the shared paths."""
    ours = {procs.running(layout.state, name) for name in ("kubelet", "containerd")}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in ours:
            argv = procs.cmdline(int(entry.name))
            if argv and Path(argv[0]).name in ("kubelet", "containerd"):
                return True
    return False


def _remove_shared_paths(layout: config.Layout) -> None:
    """Host paths ``up`` saw absent: cgroup dirs (empty ones only, deepest first) and kubelet's dirs."""
    if _others_running(layout):
        return
    for created in layout.created:
        path = Path(created)
        if created.startswith("/sys/fs/cgroup/"):
            for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    child.rmdir()
                except OSError:
                    pass
            try:
                path.rmdir()
            except OSError:
                pass
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def down(directory: Path) -> bool:
    """Remove the cluster in ``directory``; False when there was none."""
    directory = directory.resolve()
    layout = config.Layout.load(directory)
    if layout is None:
        return False
    state = layout.state
    for name in ("kube-scheduler", "kube-controller-manager", "kubelet"):
        procs.stop(state, name)
    _remove_containers(layout)
    procs.stop(state, "containerd")
    _kill_leftovers(layout)
    _unmount_all(state)
    _remove_bridge(layout)
    for name in ("kube-apiserver", "etcd", "registry"):
        procs.stop(state, name)
    _restore_tunables(layout)
    _remove_pod_logs(layout)
    _remove_shared_paths(layout)
    _unmount_all(state)
    shutil.rmtree(state, ignore_errors=True)
    for name in ("kubeconfig", "registry"):
        (directory / name).unlink(missing_ok=True)
    try:
        directory.rmdir()  # only when empty: DIR may hold the caller's own files
    except OSError:
        pass
    return True
