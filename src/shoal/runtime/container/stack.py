"""The stack image: Debian bookworm with the toolchains buildpack builds need, built once and cached.

Role: ``shoal stack build`` makes ``localhost/shoal/stack:bookworm`` (buildpack builds and their
apps run in it, so the host needs no toolchains). The base is ``debian:bookworm`` pulled from a
registry when one answers (through ``--registry-mirror``), else a ``debootstrap --variant=minbase``
root from the machine's own Debian mirror, imported; then one Dockerfile step installs the
packages from that mirror. The result carries the recipe's hash as a label, so an image that
is already there is reused at once, and is saved under ``~/.cache/shoal/stack/`` (outside any
clone) so a machine whose engine storage was reset loads it instead of building it again.

Measured here (2 cores): debootstrap ~30 s, import ~6 s, package step ~100 s; 1.5 GB. Debian's
versions: Python 3.11, Node 18 / npm 9, Go 1.19, PHP 8.2 (nginx + php-fpm), Ruby 3.1, Hugo 0.111.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from shoal.domain.deployments import StepFailed
from shoal.runtime.container import images
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.registries import ImageRef

Log = Callable[[str], None]

STACK_IMAGE = "localhost/shoal/stack:bookworm"
BASE_IMAGE = "localhost/shoal/debian:bookworm"
SUITE = "bookworm"
PACKAGES = (
    "ca-certificates", "git", "curl",
    "python3", "python3-venv", "python3-pip", "python3-dev",
    "nodejs", "npm",
    "golang-go",
    "php-cli", "php-fpm", "composer", "nginx",
    "ruby", "ruby-bundler",
    "hugo",
    "build-essential",
)
RECIPE_LABEL = "shoal.stack.recipe"
_DOCKERFILE = """\
FROM {base}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \\
 && apt-get install -y --no-install-recommends {packages} \\
 && rm -rf /var/lib/apt/lists/* \\
 && useradd --create-home --uid 10001 --shell /bin/sh app
WORKDIR /workspace
"""


@dataclass(frozen=True)
class Recipe:
    packages: tuple[str, ...] = PACKAGES
    suite: str = SUITE

    def dockerfile(self, base: str) -> str:
        return _DOCKERFILE.format(base=base, packages=" ".join(self.packages))

    @property
    def key(self) -> str:
        """What the image is keyed by: the Dockerfile (whatever the base) and the suite."""
        text = self.suite + "\n" + self.dockerfile("BASE")
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shoal" / "stack"


def ensure_stack(engine: Engine, log: Log, *, reference: str = STACK_IMAGE, recipe: Recipe = Recipe(),
                 cache_dir: Path | None = None, mirrors: dict[str, str] | None = None, rebuild: bool = False) -> str:
    """The stack image's id: already there, else loaded from the cache, else built (and cached)."""
    cache = (cache_dir or default_cache_dir()) / f"stack-{recipe.key}.tar"
    if not rebuild and _current(engine, reference, recipe):
        log(f"=> {reference} is up to date (recipe {recipe.key})")
        return str(engine.client.images.get(reference).id)
    if not rebuild and cache.is_file():
        log(f"=> Loading {reference} from {cache}")
        with cache.open("rb") as handle:
            engine.client.images.load(handle)
        if _current(engine, reference, recipe):
            return str(engine.client.images.get(reference).id)
    base = _base(engine, log, recipe, mirrors or {})
    with tempfile.TemporaryDirectory(prefix="shoal-stack-") as context:
        Path(context, "Dockerfile").write_text(recipe.dockerfile(base), encoding="utf-8")
        log(f"=> Installing {len(recipe.packages)} packages into {reference}")
        try:
            events = engine.api.build(path=context, tag=reference, labels={RECIPE_LABEL: recipe.key}, rm=True,
                                      forcerm=True, decode=True, network_mode="host")
            for event in events:
                if event.get("error"):
                    raise StepFailed("BuildJobFailed", f"building the stack image failed: {event['error']}")
                for line in str(event.get("stream") or "").splitlines():
                    if line.strip():
                        log(line.rstrip())
        except docker.errors.APIError as exc:
            raise StepFailed("BuildJobFailed", f"building the stack image failed: {exc.explanation or exc}") from None
    _save(engine, reference, cache, log)
    return str(engine.client.images.get(reference).id)


def _current(engine: Engine, reference: str, recipe: Recipe) -> bool:
    try:
        found = engine.client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return found.labels.get(RECIPE_LABEL) == recipe.key


def _base(engine: Engine, log: Log, recipe: Recipe, mirrors: dict[str, str]) -> str:
    """``debian:<suite>`` from a registry when one answers, else debootstrapped from the apt mirror."""
    ref = ImageRef(registry=mirrors.get("docker.io", "docker.io"), path="library/debian", tag=recipe.suite)
    try:
        images.pull(engine, ref, None, log)
        return ref.reference
    except StepFailed as failure:
        log(f"=> No registry answered ({failure.message.splitlines()[0][:160]}); debootstrapping instead")
    if images.exists(engine, BASE_IMAGE):
        log(f"=> Using {BASE_IMAGE}, debootstrapped earlier")
        return BASE_IMAGE
    _debootstrap(engine, recipe.suite, debian_mirror(), log)
    return BASE_IMAGE


def _debootstrap(engine: Engine, suite: str, mirror: str, log: Log) -> None:
    if shutil.which("debootstrap") is None:
        raise StepFailed("BuildJobFailed", "no registry answered and debootstrap is not installed "
                                           "(apt-get install -y debootstrap, as root)")
    with tempfile.TemporaryDirectory(prefix="shoal-debootstrap-") as work:
        root, tarball = Path(work) / "root", Path(work) / "root.tar"
        log(f"=> debootstrap --variant=minbase {suite} from {mirror}")
        _run(["debootstrap", "--variant=minbase", suite, str(root), mirror], log)
        _run(["tar", "-C", str(root), "-cf", str(tarball), "."], log)
        log(f"=> Importing the root filesystem as {BASE_IMAGE}")
        images.import_rootfs(engine, tarball, BASE_IMAGE, ["CMD [\"/bin/bash\"]"])


def _run(argv: list[str], log: Log) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for raw in proc.stdout:
        log(raw.decode(errors="replace").rstrip())
    if proc.wait() != 0:
        raise StepFailed("BuildJobFailed", f"{argv[0]} exited with status {proc.returncode}")


_DEB_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)")


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses (one-line or deb822 sources), else deb.debian.org."""
    texts = []
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    for text in texts:
        for line in text.splitlines():
            found = _DEB_LINE.match(line)
            if found and "security" not in found.group(1) and "/debian" in found.group(1):
                return found.group(1)
        for stanza in text.split("\n\n"):
            fields = dict(_field(line) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            uri = fields.get("uris", "").split()
            if uri and "security" not in uri[0] and "/debian" in uri[0] and "deb" in fields.get("types", ""):
                return uri[0]
    return "http://deb.debian.org/debian"


def _field(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    return key.strip().lower(), value.strip()


def _save(engine: Engine, reference: str, cache: Path, log: Log) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial")
    with partial.open("wb") as handle:
        for chunk in engine.client.images.get(reference).save(named=True):
            handle.write(chunk)
    os.replace(partial, cache)
    for stale in cache.parent.glob("stack-*.tar"):
        if stale != cache:
            stale.unlink()
    log(f"=> Cached {reference} in {cache}")
