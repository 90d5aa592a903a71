"""Where a component's source comes from, and a cache of bare git mirrors that fetches it.

Role: turn a component's ``git``/``github``/``gitlab``/``bitbucket`` block (reference §4.2) into a
URL git can clone, keep one ``git clone --mirror`` per URL under a cache root, and write the tree
of one commit into a build directory. A redeploy of an unchanged repository is a single
``git fetch`` that transfers nothing.

Must not: build anything, read the app spec beyond the source block, or ever let git prompt for
credentials (a prompt would hang a deployment forever, so every call runs with
``GIT_TERMINAL_PROMPT=0``, ssh in batch mode and stdin closed). Failures are ``StepFailed`` with
DigitalOcean's ``BuildJobFailed`` reason so the deployment shows why it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import GitSource, Source

# Hosted sources name a repository as "owner/name"; the spec validator already checked the shape.
_HOSTS: tuple[tuple[str, str], ...] = (
    ("github", "https://github.com/{repo}.git"),
    ("gitlab", "https://gitlab.com/{repo}.git"),
    ("bitbucket", "https://bitbucket.org/{repo}.git"),
)
# user:password@ in an https URL must never reach a log line or an error message.
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


@dataclass(frozen=True)
class SourceRef:
    """A repository to clone and the branch to follow (``None`` = the remote's default branch)."""

    url: str
    branch: str | None


def source_ref(source: Source | None) -> SourceRef | None:
    """The git source of a unit as a URL git can clone, or ``None`` when it deploys an image (or has none)."""
    if not isinstance(source, GitSource):
        return None
    template = dict(_HOSTS).get(source.provider)
    if template is None:
        return SourceRef(source.url, source.branch)
    return SourceRef(template.format(repo=source.url.strip("/").removesuffix(".git")), source.branch)


def redact(url: str) -> str:
    """``url`` with any embedded credentials replaced, fit for logs."""
    return _CREDENTIALS.sub("***@", url)


class SourceCache:
    """Bare mirrors of the repositories components build from, one directory per URL."""

    def __init__(self, root: Path) -> None:
        self._root = root
        # One lock per URL: two deployments of the same repo must not fetch into one mirror at once.
        self._locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, url: str) -> Path:
        return self._root / hashlib.sha256(url.encode()).hexdigest()

    async def fetch(self, ref: SourceRef, log: Callable[[str], None]) -> str:
        """Bring the mirror of ``ref.url`` up to date and return the commit sha its branch points at."""
        lock = self._locks.setdefault(ref.url, asyncio.Lock())
        async with lock:
            mirror = self.mirror_path(ref.url)
            shown = redact(ref.url)
            if (mirror / "HEAD").is_file():
                log(f"=> Fetching {shown}")
                await _git(["--git-dir", str(mirror), "fetch", "--prune", "--quiet", "origin"], ref, "fetch")
                if ref.branch is None:
                    await _follow_default_branch(mirror, ref)
            else:
                log(f"=> Cloning {shown}")
                await self._clone(ref, mirror)
            commit = await _resolve(mirror, ref)
            log(f"=> Checked out {ref.branch or 'the default branch'} at commit {commit[:7]}")
            return commit

    async def _clone(self, ref: SourceRef, mirror: Path) -> None:
        # Clone beside the final place and rename: a clone cut short by a crash is never mistaken
        # for a complete mirror, because only a finished one is ever at ``mirror``.
        self._root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=mirror.name + ".", suffix=".partial", dir=self._root))
        try:
            await _git(["clone", "--mirror", "--quiet", ref.url, str(partial)], ref, "clone")
            await asyncio.to_thread(shutil.rmtree, mirror, True)
            partial.rename(mirror)
        finally:
            await asyncio.to_thread(shutil.rmtree, partial, True)

    async def export(self, ref: SourceRef, commit: str, dest: Path) -> None:
        """Write the tree of ``commit`` into ``dest`` (created if missing); no ``.git`` is left there."""
        mirror = self.mirror_path(ref.url)
        dest.mkdir(parents=True, exist_ok=True)
        # read-tree into a throw-away index checks out files, symlinks and exec bits exactly as git
        # stores them, without touching the mirror's own state (unlike a worktree or checkout).
        with tempfile.TemporaryDirectory(prefix="shoal-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            await _git(["--git-dir", str(mirror), "--work-tree", str(dest), "read-tree", "--reset", "-u", commit],
                       ref, f"export commit {commit[:7]}", env)


async def _resolve(mirror: Path, ref: SourceRef) -> str:
    target = f"refs/heads/{ref.branch}" if ref.branch else "HEAD"
    code, out, _ = await _run_git(["--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", target + "^{commit}"])
    if code == 0:
        return out.strip()
    if ref.branch is None:
        raise StepFailed("BuildJobFailed", f"repository {redact(ref.url)} has no commits on its default branch")
    _, names, _ = await _run_git(["--git-dir", str(mirror), "for-each-ref", "--format=%(refname:short)", "refs/heads"])
    known = ", ".join(names.split()) or "none"
    raise StepFailed("BuildJobFailed",
                     f"branch {ref.branch!r} was not found in {redact(ref.url)} (branches: {known})")


async def _follow_default_branch(mirror: Path, ref: SourceRef) -> None:
    # A mirror's HEAD is set once at clone time; ask the remote again so a renamed default
    # branch (master → main) is followed. Best effort: on failure the old HEAD is kept.
    code, out, _ = await _run_git(["--git-dir", str(mirror), "ls-remote", "--symref", "origin", "HEAD"])
    for line in out.splitlines() if code == 0 else []:
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            await _run_git(["--git-dir", str(mirror), "symbolic-ref", "HEAD", line[5:].split("\t")[0]])


async def _git(args: list[str], ref: SourceRef, action: str, env: Mapping[str, str] | None = None) -> str:
    code, out, err = await _run_git(args, env)
    if code != 0:
        reason = " ".join(line.strip() for line in err.strip().splitlines()[-3:]) or f"git exited with status {code}"
        raise StepFailed("BuildJobFailed", f"could not {action} {redact(ref.url)}: {redact(reason)}")
    return out


async def _run_git(args: list[str], env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**_quiet_env(), **(env or {})})
    except FileNotFoundError as exc:
        raise StepFailed("BuildJobFailed",
                         "git is not installed on this machine; it is needed to fetch sources") from exc
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GIT_TERMINAL_PROMPT": "0",            # never ask for a username/password on a tty
        "GIT_ASKPASS": "true",                 # ...nor through a GUI helper: answer empty at once
        "SSH_ASKPASS": "true",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "LC_ALL": "C",                         # git's messages in English, as they land in errors
    })
    return env
