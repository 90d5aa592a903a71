"""``ports.SourceDetector`` for every runtime: fetch a source the way a deployment does, look, throw it away.

Role: the fetch is the deployments' own (``runtime.local.sources``: ``source_ref`` for github/gitlab/
bitbucket, the ``SourceCache`` with the platform's ``SourcePolicy``), so a URL a deployment may not build
from — a path inside shoal's data dir, a local path an account was not given — is refused in the same
words, and a missing repository or branch fails with git's own reason. Each request fetches into a
scratch directory of its own that is deleted afterwards: no mirror is kept, so a detect never shares
(or races) a cache entry with a deployment, and an account's fetch is never another's. The whole of it
is bounded by ``timeout`` seconds; the file reads run in a thread, after the copy's symlinks that lead out
of it are removed.

Must not: keep anything it fetched, or build or run anything found there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from shoal.core.errors import BadRequest, UnprocessableEntity
from shoal.domain.deployments import StepFailed
from shoal.domain.detection import DetectRequest, Detected
from shoal.domain.ports import SourcePolicy
from shoal.runtime.local.sources import SourceCache, redact, source_ref
from shoal.runtime.source_tree import examine

DETECT_TIMEOUT_SECONDS = 120.0


class SourceDetection:
    """Detection of fetched sources, under ``policy``, in scratch directories below ``scratch``."""

    def __init__(self, policy: SourcePolicy, scratch: Path, timeout: float = DETECT_TIMEOUT_SECONDS) -> None:
        self._policy = policy
        self._scratch = scratch
        self._timeout = timeout

    async def detect(self, account_id: str, request: DetectRequest) -> Detected:
        ref = source_ref(request.source, account_id)
        if ref is None:  # the request parser only makes git sources; kept for the type
            raise BadRequest('field "git": a git, github, gitlab or bitbucket source is required')
        refused = self._policy.refusal(account_id, ref.url)
        if refused is not None:
            field = "git.repo_clone_url" if request.source.provider == "git" else f"{request.source.provider}.repo"
            raise BadRequest(f'field "{field}": cannot fetch {redact(ref.url)}: {refused}')
        work = await asyncio.to_thread(self._workdir)
        try:
            async with asyncio.timeout(self._timeout):
                cache = SourceCache(work / "git", self._policy)
                commit = await cache.fetch(ref, _quiet, request.commit_sha)
                await cache.export(ref, commit, work / "tree")
            return await asyncio.to_thread(_examined, work / "tree", request.source_dir)
        except StepFailed as failed:
            raise UnprocessableEntity(failed.message) from failed
        except TimeoutError as exc:
            raise UnprocessableEntity(f"fetching {redact(ref.url)} took longer than {self._timeout:g} s") from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    def _workdir(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="detect-", dir=self._scratch))


def _examined(tree: Path, source_dir: str) -> Detected:
    drop_escaping_links(tree)
    return examine(tree, source_dir)


def drop_escaping_links(tree: Path) -> None:
    """Remove the symlinks of this scratch copy that lead out of it. The answer echoes what it read (a
    Procfile's ``web`` line): a repository's ``Procfile -> /srv/elsewhere`` must not read this machine's
    files back to the caller, and a link to a FIFO or a device must not hang the look."""
    top = Path(os.path.realpath(tree))
    for directory, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            path = Path(directory) / name
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(top):
                path.unlink()


def _quiet(line: str) -> None:
    """Fetch progress has no deployment log to go to."""
