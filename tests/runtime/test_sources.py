"""The source cache against real git repositories made in a temp dir (no network, no mocks)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import units_of
from shoal.runtime.local.sources import SourceCache, SourceRef, redact, source_ref


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files, "first")
    return path


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def cache(tmp_path: Path) -> SourceCache:
    return SourceCache(tmp_path / "cache")


def test_source_ref_maps_every_git_source() -> None:
    def ref(spec: dict[str, object]) -> SourceRef | None:
        return source_ref(units_of({"name": "app", "services": [{"name": "web", **spec}]})[0].source)

    assert ref({"git": {"repo_clone_url": "/srv/repo", "branch": "dev"}}) == SourceRef("/srv/repo", "dev")
    assert ref({"github": {"repo": "acme/web", "branch": "main"}}) == \
        SourceRef("https://github.com/acme/web.git", "main")
    assert ref({"gitlab": {"repo": "acme/group/web"}}) == SourceRef("https://gitlab.com/acme/group/web.git", None)
    assert ref({"bitbucket": {"repo": "acme/web", "branch": "x"}}) == SourceRef("https://bitbucket.org/acme/web.git", "x")
    assert ref({"image": {"registry_type": "DOCKER_HUB", "repository": "nginx"}}) is None
    assert ref({}) is None


def test_redact_hides_credentials() -> None:
    assert redact("https://user:tok@example.com/a.git") == "https://***@example.com/a.git"
    assert redact("/srv/repo") == "/srv/repo"


def test_fetch_clones_once_then_fetches(tmp_path: Path, cache: SourceCache) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "print(1)\n"})
    ref = SourceRef(str(repo), None)
    first, second = Lines(), Lines()
    sha = asyncio.run(cache.fetch(ref, first))
    assert sha == git(repo, "rev-parse", "HEAD")
    assert any("Cloning" in line for line in first)
    assert asyncio.run(cache.fetch(ref, second)) == sha
    assert any("Fetching" in line for line in second) and not any("Cloning" in line for line in second)
    newer = commit(repo, {"app.py": "print(2)\n"})
    assert asyncio.run(cache.fetch(ref, Lines())) == newer != sha


def test_branch_selection_and_missing_branch(tmp_path: Path, cache: SourceCache) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "main\n"})
    main_sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    feature_sha = commit(repo, {"a.txt": "feature\n"})
    git(repo, "checkout", "-q", "main")
    assert asyncio.run(cache.fetch(SourceRef(str(repo), "feature"), Lines())) == feature_sha
    assert asyncio.run(cache.fetch(SourceRef(str(repo), "main"), Lines())) == main_sha
    assert asyncio.run(cache.fetch(SourceRef(str(repo), None), Lines())) == main_sha
    with pytest.raises(StepFailed) as failed:
        asyncio.run(cache.fetch(SourceRef(str(repo), "nope"), Lines()))
    assert failed.value.code == "BuildJobFailed"
    assert "'nope'" in failed.value.message and "feature" in failed.value.message


def test_file_url_and_plain_path_are_separate_mirrors(tmp_path: Path, cache: SourceCache) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n"})
    sha = git(repo, "rev-parse", "HEAD")
    by_url = SourceRef(repo.as_uri(), None)
    assert by_url.url.startswith("file://")
    assert asyncio.run(cache.fetch(by_url, Lines())) == sha
    assert asyncio.run(cache.fetch(SourceRef(str(repo), None), Lines())) == sha
    assert cache.mirror_path(by_url.url) != cache.mirror_path(str(repo))
    assert (cache.mirror_path(by_url.url) / "HEAD").is_file()


def test_unknown_repo_fails_clearly(tmp_path: Path, cache: SourceCache) -> None:
    missing = tmp_path / "no-such-repo"
    with pytest.raises(StepFailed) as failed:
        asyncio.run(cache.fetch(SourceRef(str(missing), None), Lines()))
    assert failed.value.code == "BuildJobFailed"
    assert str(missing) in failed.value.message
    assert any(words in failed.value.message for words in ("does not exist", "not a git repository",
                                                            "does not appear to be a git repository"))
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "cache").iterdir())


def test_credentials_never_reach_the_error(cache: SourceCache) -> None:
    ref = SourceRef("https://user:s3cret@127.0.0.1:9/acme/web.git", None)
    with pytest.raises(StepFailed) as failed:
        asyncio.run(cache.fetch(ref, Lines()))
    assert "s3cret" not in failed.value.message and "127.0.0.1" in failed.value.message


def test_concurrent_fetches_of_one_repo_are_serialised(tmp_path: Path, cache: SourceCache) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n"})
    ref = SourceRef(str(repo), "main")

    async def both() -> list[str]:
        return list(await asyncio.gather(*(cache.fetch(ref, Lines()) for _ in range(4))))

    assert set(asyncio.run(both())) == {git(repo, "rev-parse", "HEAD")}


def test_export_writes_the_tree_without_git(tmp_path: Path, cache: SourceCache) -> None:
    repo = make_repo(tmp_path / "repo", {"web/index.html": "<h1>v1</h1>\n", "run.sh": "#!/bin/sh\n"})
    os.chmod(repo / "run.sh", 0o755)
    first = commit(repo, {"README": "readme\n"})
    ref = SourceRef(str(repo), None)
    asyncio.run(cache.fetch(ref, Lines()))
    commit(repo, {"web/index.html": "<h1>v2</h1>\n"})
    dest = tmp_path / "out"
    asyncio.run(cache.export(ref, first, dest))  # an older commit than the branch head
    assert (dest / "web" / "index.html").read_text() == "<h1>v1</h1>\n"
    assert (dest / "README").is_file() and not (dest / ".git").exists()
    assert os.access(dest / "run.sh", os.X_OK)


def test_fetch_is_shallow_and_an_older_commit_is_fetched_on_demand(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"v.txt": "1"})
    old = git(repo, "rev-parse", "HEAD")
    for n in range(2, 6):
        commit(repo, {"v.txt": str(n)})
    cache, ref = SourceCache(tmp_path / "cache"), SourceRef(repo.as_uri(), "main")
    tip = asyncio.run(cache.fetch(ref, Lines()))
    mirror = cache.mirror_path(ref.url)
    assert subprocess.run(["git", "--git-dir", str(mirror), "rev-list", "--count", tip], capture_output=True,
                          text=True, check=True).stdout.strip() == "1"  # only the tip was fetched
    log = Lines()
    asyncio.run(cache.export(ref, old, tmp_path / "rollback", log))  # a rollback to the first commit
    assert (tmp_path / "rollback" / "v.txt").read_text() == "1"
    assert any("is not in the shallow fetch" in line for line in log)


def test_a_broken_old_object_does_not_stop_a_shallow_fetch(tmp_path: Path) -> None:
    # Before: clone --mirror read every object and failed on the one broken blob of an old commit.
    repo = make_repo(tmp_path / "repo", {"old.txt": "soon broken"})
    blob = git(repo, "rev-parse", "HEAD:old.txt")
    commit(repo, {"new.txt": "fine"})
    git(repo, "rm", "-q", "old.txt")
    git(repo, "commit", "-q", "-m", "drop old")
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(b"garbage")
    cache, ref = SourceCache(tmp_path / "cache"), SourceRef(repo.as_uri(), "main")
    tip = asyncio.run(cache.fetch(ref, Lines()))
    asyncio.run(cache.export(ref, tip, tmp_path / "out"))
    assert (tmp_path / "out" / "new.txt").read_text() == "fine"


def test_submodules_are_exported_at_their_pinned_commit(tmp_path: Path) -> None:
    theme = make_repo(tmp_path / "theme", {"layouts/index.html": "v1"})
    pinned = git(theme, "rev-parse", "HEAD")
    site = make_repo(tmp_path / "site", {"hugo.toml": "theme = 'plain'\n"})
    subprocess.run(["git", "-C", str(site), "-c", "protocol.file.allow=always", "submodule", "add", "-q",
                    "../theme", "themes/plain"], check=True, capture_output=True)
    git(site, "commit", "-q", "-m", "theme as a submodule")
    commit(theme, {"layouts/index.html": "v2 (not pinned)"})
    cache, ref = SourceCache(tmp_path / "cache"), SourceRef(str(site), "main")
    tip = asyncio.run(cache.fetch(ref, Lines()))
    log = Lines()
    asyncio.run(cache.export(ref, tip, tmp_path / "out", log))
    assert (tmp_path / "out" / "themes" / "plain" / "layouts" / "index.html").read_text() == "v1"
    assert f"=> Submodule themes/plain: {tmp_path / 'theme'} at {pinned[:7]}" in log
