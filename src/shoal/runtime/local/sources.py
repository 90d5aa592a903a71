"""Where a component's source comes from, and a cache of shallow bare repositories that fetches it.

Role: turn a component's ``git``/``github``/``gitlab``/``bitbucket`` block (reference §4.2) into a
URL git can fetch, keep one bare repository per URL under a cache root holding only what builds need —
the branch's last commit (``fetch --depth=1``), deepened on demand when an older commit is asked for
(a rollback) — and write the tree of one commit into a build directory, its git submodules (a Hugo
theme) included at the commits it pins. A repository with a broken old object still builds: its old
history is never fetched. A redeploy of an unchanged repository is one ``git fetch`` that transfers
nothing.

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
from pathlib import Path, PurePosixPath
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
        """Fetch the tip of ``ref``'s branch (shallow: its last commit only) and return the commit sha."""
        lock = self._locks.setdefault(ref.url, asyncio.Lock())
        async with lock:
            mirror = self.mirror_path(ref.url)
            shown = redact(ref.url)
            fresh = not (mirror / "HEAD").is_file()
            log(f"=> {'Cloning' if fresh else 'Fetching'} {shown}" + (f" ({ref.branch})" if ref.branch else ""))
            if fresh:
                await self._init(ref, mirror)
            branch = ref.branch or await _default_branch(mirror, ref)
            await _git(["--git-dir", str(mirror), "fetch", "--quiet", "--depth=1", "--no-tags", "origin",
                        f"+refs/heads/{branch}:refs/heads/{branch}"], ref, "fetch", missing=branch)
            if ref.branch is None:
                await _run_git(["--git-dir", str(mirror), "symbolic-ref", "HEAD", f"refs/heads/{branch}"])
            commit = await _resolve(mirror, ref)
            log(f"=> Checked out {ref.branch or 'the default branch'} at commit {commit[:7]}")
            return commit

    async def _init(self, ref: SourceRef, mirror: Path) -> None:
        # A bare repository with the remote and nothing else, made beside the final place and renamed:
        # one cut short by a crash is never taken for a cache entry.
        self._root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=mirror.name + ".", suffix=".partial", dir=self._root))
        try:
            await _git(["init", "--quiet", "--bare", str(partial)], ref, "clone")
            await _git(["--git-dir", str(partial), "remote", "add", "origin", ref.url], ref, "clone")
            await asyncio.to_thread(shutil.rmtree, mirror, True)
            partial.rename(mirror)
        finally:
            await asyncio.to_thread(shutil.rmtree, partial, True)

    async def _ensure(self, ref: SourceRef, commit: str, log: Callable[[str], None]) -> None:
        """Make ``commit`` present, deepening the shallow history on demand (a rollback to an older commit)."""
        mirror = self.mirror_path(ref.url)
        if not (mirror / "HEAD").is_file():
            await self._init(ref, mirror)
        if await _has(mirror, commit):
            return
        log(f"=> Commit {commit[:7]} is not in the shallow fetch of {redact(ref.url)}: fetching it")
        base = ["--git-dir", str(mirror), "fetch", "--quiet", "--no-tags", "origin"]
        await _run_git([*base, "--depth=1", commit])  # servers that allow fetching a commit by id
        branch = f"+refs/heads/{ref.branch}:refs/heads/{ref.branch}" if ref.branch else "HEAD"
        for deeper in (["--deepen=50"], ["--deepen=500"], ["--unshallow"]):
            if await _has(mirror, commit):
                return
            await _run_git([*base, *deeper, branch])
        if not await _has(mirror, commit):
            raise StepFailed("BuildJobFailed", f"commit {commit[:7]} was not found in {redact(ref.url)}")

    async def export(self, ref: SourceRef, commit: str, dest: Path,
                     log: Callable[[str], None] = lambda line: None) -> None:
        """Write the tree of ``commit`` into ``dest`` (created if missing), its git submodules (a Hugo theme)
        at the commits it pins included; no ``.git`` is left there."""
        async with self._locks.setdefault(ref.url, asyncio.Lock()):
            await self._ensure(ref, commit, log)
        mirror = self.mirror_path(ref.url)
        dest.mkdir(parents=True, exist_ok=True)
        # read-tree into a throw-away index checks out files, symlinks and exec bits exactly as git
        # stores them, without touching the cache's own state (unlike a worktree or checkout).
        with tempfile.TemporaryDirectory(prefix="shoal-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            await _git(["--git-dir", str(mirror), "--work-tree", str(dest), "read-tree", "--reset", "-u", commit],
                       ref, f"export commit {commit[:7]}", env)
        for path, url, pinned in await _submodules(mirror, commit, ref.url, dest):
            log(f"=> Submodule {path}: {redact(url)} at {pinned[:7]}")
            await self.export(SourceRef(url, None), pinned, dest / path, log)


async def _has(mirror: Path, commit: str) -> bool:
    code, _, _ = await _run_git(["--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}"])
    return code == 0


async def _default_branch(mirror: Path, ref: SourceRef) -> str:
    """The remote's default branch (asked every time, so a renamed one — master → main — is followed)."""
    code, out, err = await _run_git(["--git-dir", str(mirror), "ls-remote", "--symref", "origin", "HEAD"])
    for line in out.splitlines() if code == 0 else []:
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/"):].split("\t")[0]
    if code != 0:
        raise StepFailed("BuildJobFailed", f"could not fetch {redact(ref.url)}: {redact(_reason(err, code))}")
    raise StepFailed("BuildJobFailed", f"repository {redact(ref.url)} has no commits on its default branch")


async def _submodules(mirror: Path, commit: str, parent_url: str, dest: Path) -> list[tuple[str, str, str]]:
    """(path, url, pinned commit) of each submodule of ``commit``; relative URLs against the parent's."""
    if not (dest / ".gitmodules").is_file():
        return []
    code, out, _ = await _run_git(["config", "--file", str(dest / ".gitmodules"), "--get-regexp",
                                   r"^submodule\..*\.(path|url)$"])
    entries: dict[str, dict[str, str]] = {}
    for line in out.splitlines() if code == 0 else []:
        key, _, value = line.partition(" ")
        name, _, field = key.removeprefix("submodule.").rpartition(".")
        entries.setdefault(name, {})[field] = value.strip()
    found = []
    for entry in entries.values():
        path, url = entry.get("path", ""), entry.get("url", "")
        if not path or not url or ".." in PurePosixPath(path).parts or PurePosixPath(path).is_absolute():
            continue
        code, tree, _ = await _run_git(["--git-dir", str(mirror), "ls-tree", commit, "--", path])
        fields = tree.split()
        if code == 0 and len(fields) >= 3 and fields[1] == "commit":
            found.append((path, _relative_url(parent_url, url), fields[2]))
    return found


def _relative_url(parent: str, url: str) -> str:
    if not url.startswith(("./", "../")):
        return url
    base = parent.rstrip("/")
    for part in url.split("/"):
        if part == "..":
            base = base.rsplit("/", 1)[0]
        elif part not in (".", ""):
            base = f"{base}/{part}"
    return base


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


async def _git(args: list[str], ref: SourceRef, action: str, env: Mapping[str, str] | None = None,
               missing: str | None = None) -> str:
    code, out, err = await _run_git(args, env)
    if code != 0 and missing and "couldn't find remote ref" in err:
        _, names, _ = await _run_git(["--git-dir", args[1], "ls-remote", "--heads", "origin"])
        known = ", ".join(x.split("refs/heads/")[-1] for x in names.splitlines()) or "none"
        raise StepFailed("BuildJobFailed", f"branch {missing!r} was not found in {redact(ref.url)} (branches: {known})")
    if code != 0:
        raise StepFailed("BuildJobFailed", f"could not {action} {redact(ref.url)}: {redact(_reason(err, code))}")
    return out


def _reason(err: str, code: int) -> str:
    """git's own words: its first ``fatal:`` line (the cause), else its last lines."""
    lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
    fatal = next((line.removeprefix("fatal: ") for line in lines if line.startswith("fatal:")), None)
    return fatal or " ".join(lines[-3:]) or f"git exited with status {code}"


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
