"""Build Kubernetes 1.20.2 from Debian 12's source package, as the reference measured it.

Only used when no prebuilt binaries are at hand. Checked here: the private ``deb-src`` list, ``apt-get
update`` and Debian 12 offering ``kubernetes 1.20.5+really1.20.2`` (34 MB of source, vendor/ included).
Not run here end to end (the ~12 minute compile); the prebuilt archive in ``../shared/kubernetes`` was
made by the same steps. The machine's apt configuration is left alone: the
``deb-src`` line and the package lists live in a private directory under the cache and are passed to
apt with ``-o``. Build tools come from Debian (installed only when missing; needs root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from kubedev.procs import ClusterError

TOOLS = {"go": "golang-go", "dpkg-source": "dpkg-dev", "make": "make", "rsync": "rsync", "jq": "jq"}
REFLECT2 = Path("/usr/share/gocode/src/github.com/modern-go/reflect2")


def _run(argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(list(argv), cwd=cwd, env=env)
    if done.returncode != 0:
        raise ClusterError(f"source build step failed ({done.returncode}): {' '.join(argv)}")


def _mirror() -> str:
    """The Debian mirror the machine's apt already uses (deb822 ``URIs:`` or a one-line ``deb`` entry)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        text = path.read_text() if path.is_file() else ""
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M):
            if "security" not in uri:
                return str(uri)
    raise ClusterError("cannot find a Debian mirror in /etc/apt/sources.list(.d)")


def _install_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if not REFLECT2.is_dir():
        missing.append("golang-github-modern-go-reflect2-dev")
    if missing:
        if os.geteuid() != 0:
            raise ClusterError(f"the source build needs {' '.join(missing)} (apt-get install -y, as root)")
        _run(["apt-get", "install", "-y", "-q", *missing])


def _fetch_source(work: Path, version: str) -> Path:
    """``apt-get source kubernetes`` through a private sources list; returns the unpacked tree."""
    apt = work / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb-src {_mirror()} bookworm main\n")
    options = ["-o", f"Dir::Etc::SourceList={apt / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
               "-o", f"Dir::State::Lists={apt / 'lists'}"]
    _run(["apt-get", *options, "update"])
    _run(["apt-get", *options, "source", "kubernetes"], cwd=work)
    trees = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("kubernetes-")]
    if len(trees) != 1:
        raise ClusterError(f"apt-get source kubernetes left {len(trees)} trees in {work}")
    changelog = (trees[0] / "CHANGELOG" / f"CHANGELOG-{version.rsplit('.', 1)[0]}.md")
    if changelog.is_file() and f"v{version}" not in changelog.read_text(errors="replace"):
        raise ClusterError(f"Debian's kubernetes source in {trees[0]} is not {version}")
    return trees[0]


def build(target: Path, programs: Sequence[str], version: str) -> None:
    """Fetch, patch (reflect2 1.0.2), build each program static, and copy them to ``target/bin``."""
    _install_tools()
    work = target / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tree = _fetch_source(work, version)
    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    shutil.rmtree(vendored, ignore_errors=True)
    shutil.copytree(REFLECT2, vendored)
    major, minor = version.split(".")[:2]
    # No git history in a source package: hack/lib/version.sh takes the version from these, as Debian's
    # rules do (else the programs report v0.0.0 and clients cannot tell what API the server has).
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor", "GO111MODULE": "on",
           "GOCACHE": str(work / "gocache"), "GOPATH": str(work / "gopath"), "KUBE_GIT_VERSION": f"v{version}",
           "KUBE_GIT_MAJOR": major, "KUBE_GIT_MINOR": minor, "KUBE_GIT_TREE_STATE": "clean"}
    for name in programs:
        _run(["make", f"WHAT=cmd/{name}", "KUBE_BUILD_PLATFORMS=linux/amd64"], cwd=tree, env=env)
    (target / "bin").mkdir(parents=True, exist_ok=True)
    for name in programs:
        built = next(iter(sorted((tree / "_output").rglob(name))), None)
        if built is None or not built.is_file():
            raise ClusterError(f"make WHAT=cmd/{name} produced no binary under {tree / '_output'}")
        shutil.copy2(built, target / "bin" / name)
    shutil.rmtree(work, ignore_errors=True)
