"""The private podman configuration shoal (and its tests) run with: ``containers.conf`` and ``registries.conf``.

Role: write the two files podman reads through ``CONTAINERS_CONF`` and ``CONTAINERS_REGISTRIES_CONF``,
so shoal never edits the machine's ``/etc/containers`` and every podman it starts behaves the same.

Why each setting (measured facts: ``shared/reference/containers-and-kubernetes-here.md``):

* ``runtime = "runc"`` when runc is installed: crun fails on hosts without CAP_SYS_RESOURCE and on
  cgroups v1 hybrid mode; runc works on both and on ordinary cgroup v2 hosts too.
* ``default_ulimits`` no higher than this process's own hard limits: a container runtime may not
  raise an rlimit, so podman's default (``nofile`` 1048576) fails where the hard limit is lower;
  ``nproc`` is also held under the kernel's ``pid_max``.
* ``registries.conf``: short names resolve on Docker Hub (as Docker does), and each
  ``--registry-mirror FROM=TO`` becomes a podman mirror, so ``FROM`` lines in Dockerfiles follow
  it as ``image`` sources do; a loopback target is plain HTTP (a test registry, an air-gapped cache).
"""

from __future__ import annotations

import resource
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_NOFILE_CAP = 1048576
_LOOPBACK = ("127.", "localhost", "[::1]")


@dataclass(frozen=True)
class PodmanConf:
    """Where the two files are; ``env`` is what a podman process needs to read them."""

    containers_conf: Path
    registries_conf: Path

    def env(self) -> dict[str, str]:
        return {"CONTAINERS_CONF": str(self.containers_conf),
                "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf)}


def ulimits() -> tuple[int, int]:
    """(nofile, nproc) a container may be given here: this process's hard limits, capped."""
    nofile = _hard(resource.RLIMIT_NOFILE, _NOFILE_CAP)
    nproc = _hard(resource.RLIMIT_NPROC, _pid_max())
    return nofile, nproc


def _hard(which: int, cap: int) -> int:
    hard = resource.getrlimit(which)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text().strip())
    except (OSError, ValueError):
        return 32768


def containers_conf_text(nofile: int, nproc: int, runtime: str | None) -> str:
    lines = ["[containers]",
             f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]',
             "[engine]"]
    if runtime:
        lines.append(f'runtime = "{runtime}"')
    return "\n".join(lines) + "\n"


def registries_conf_text(mirrors: Mapping[str, str], also: Iterable[str] = ()) -> str:
    """``also``: more registries shoal speaks to (the Kubernetes runtime's ``--image-registry``, which
    it pushes to); like mirror targets, those on loopback are plain HTTP."""
    lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "permissive"']
    for source, target in sorted(mirrors.items()):
        lines += ["", "[[registry]]", f'prefix = "{source}"', f'location = "{target}"']
        if is_loopback(target):
            lines.append("insecure = true")
    for target in sorted({t for t in [*mirrors.values(), *also] if is_loopback(t)}):
        lines += ["", "[[registry]]", f'location = "{target}"', "insecure = true"]
    return "\n".join(lines) + "\n"


def is_loopback(registry: str) -> bool:
    """Whether a registry host[:port] is on this machine (spoken to over plain HTTP)."""
    return registry.startswith(_LOOPBACK)


def write_podman_conf(directory: Path, mirrors: Mapping[str, str] | None = None,
                      also: Iterable[str] = ()) -> PodmanConf:
    """Write both files into ``directory`` (rewritten on every start: the mirrors may have changed)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    nofile, nproc = ulimits()
    runtime = "runc" if shutil.which("runc") else None
    conf = PodmanConf(directory / "containers.conf", directory / "registries.conf")
    conf.containers_conf.write_text(containers_conf_text(nofile, nproc, runtime), encoding="utf-8")
    conf.registries_conf.write_text(registries_conf_text(mirrors or {}, also), encoding="utf-8")
    return conf
