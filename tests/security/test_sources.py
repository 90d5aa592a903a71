"""Where an app's sources may come from: local paths are the operator's choice, git never takes a
URL as an option, and no account can reach another's cached mirror of a repository.

Attacks tried: ``repo_clone_url`` set to another account's mirror under the data dir; to a local
repository by an account that is not the admin; to ``--upload-pack=...`` and ``ext::sh -c ...``;
and the same URLs handed to the source cache directly, as a spec stored before these rules would.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.domain.deployments import StepFailed
from shoal.runtime.local.sources import SourceCache, SourceRef
from tests.conftest import unique_name
from tests.live import LiveServer
from tests.runtime.test_sources import Lines, make_repo

INJECTIONS = ["--upload-pack=touch {marker}", "-u touch {marker}", "ext::sh -c touch% {marker}",
              "--config=core.sshCommand=touch {marker}"]


def _spec(url: str) -> dict[str, Any]:
    return {"name": unique_name("src"), "services": [{"name": "web", "git": {"repo_clone_url": url, "branch": "main"}}]}


def test_the_policy(tmp_path: Path) -> None:
    from shoal.runtime.local.sources import LocalSources

    data, allowed, elsewhere = tmp_path / "data", tmp_path / "shared", tmp_path / "home" / "repo"
    for folder in (data / "cache" / "git" / "abc", allowed / "r", elsewhere):
        folder.mkdir(parents=True)
    (tmp_path / "link-into-data").symlink_to(data)
    policy = LocalSources(data, (allowed,), admin_account_id="admin-id")
    assert policy.refusal("admin-id", str(elsewhere)) is None
    assert policy.refusal("admin-id", elsewhere.as_uri()) is None
    assert policy.refusal("admin-id", "https://github.com/a/b.git") is None
    assert policy.refusal("bob", "git@github.com:a/b.git") is None
    assert policy.refusal("bob", str(allowed / "r")) is None
    for who in ("admin-id", "bob"):
        assert "data dir" in (policy.refusal(who, str(data / "cache" / "git" / "abc")) or "")
        assert "data dir" in (policy.refusal(who, (data / "cache").as_uri()) or "")
        assert "data dir" in (policy.refusal(who, str(tmp_path / "link-into-data" / "cache")) or "")
        assert "'-'" in (policy.refusal(who, "--upload-pack=touch /tmp/x") or "")
        assert "runs a program" in (policy.refusal(who, "ext::sh -c touch% /tmp/x") or "")
    assert "admin account" in (policy.refusal("bob", str(elsewhere)) or "")
    assert "admin account" in (policy.refusal("bob", elsewhere.as_uri()) or "")
    assert "absolute" in (policy.refusal("admin-id", "relative/repo") or "")


@pytest.mark.parametrize("url", INJECTIONS)
def test_git_never_takes_a_url_as_an_option(tmp_path: Path, url: str) -> None:
    marker = tmp_path / "pwned"
    cache = SourceCache(tmp_path / "cache")  # no policy at all: only what git itself is given
    with pytest.raises(StepFailed) as failed:
        asyncio.run(cache.fetch(SourceRef(url.format(marker=marker), None), Lines()))
    assert failed.value.code == "BuildJobFailed"
    assert "'-'" in failed.value.message or "runs a program" in failed.value.message  # refused, git never saw it
    assert not marker.exists()


def test_accounts_never_share_a_mirror(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "x\n"})
    cache = SourceCache(tmp_path / "cache")
    alice, bob = SourceRef(str(repo), None, "alice"), SourceRef(str(repo), None, "bob")
    asyncio.run(cache.fetch(alice, Lines()))
    assert (cache.mirror_path(alice) / "HEAD").is_file() and not cache.mirror_path(bob).exists()
    assert cache.mirror_path(alice).name != hashlib.sha256(str(repo).encode()).hexdigest()  # not by URL alone


def test_a_stored_spec_naming_another_accounts_mirror_fails_to_fetch(tmp_path: Path) -> None:
    from shoal.runtime.local.sources import LocalSources

    data = tmp_path / "data"
    repo = make_repo(tmp_path / "private", {"secret.txt": "alice's\n"})
    cache = SourceCache(data / "cache" / "git", LocalSources(data, (tmp_path,), admin_account_id="admin-id"))
    asyncio.run(cache.fetch(SourceRef(str(repo), None, "alice"), Lines()))
    mirror = cache.mirror_path(SourceRef(str(repo), None, "alice"))
    for who in ("bob", "admin-id"):
        with pytest.raises(StepFailed) as failed:
            asyncio.run(cache.fetch(SourceRef(str(mirror), None, who), Lines()))
        assert "data dir" in failed.value.message


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("sources")
    shared = root / "shared"
    shared.mkdir()
    server = LiveServer(data_dir=root / "data", extra_args=["--allow-local-sources", str(shared)]).start()
    yield server, root, shared
    server.stop()


def _create(server: LiveServer, token: str | None, url: str) -> httpx.Response:
    with server.http(token) as http:
        return http.post("/v2/apps", json={"spec": _spec(url)})


def test_the_api_refuses_what_the_policy_refuses(live: Any) -> None:
    server, root, shared = live
    bob = server.create_token(account="bob")
    private = make_repo(root / "admins-repo", {"a.txt": "x\n"})
    team = make_repo(shared / "team-repo", {"a.txt": "x\n"})
    assert _create(server, None, str(private)).status_code == 200  # the admin may
    assert _create(server, bob, str(team)).status_code == 200  # anyone may, inside --allow-local-sources
    assert _create(server, bob, "https://example.com/r.git").status_code == 200
    refused = [(bob, str(private), "admin account"), (bob, private.as_uri(), "admin account"),
               (None, str(server.data_dir / "cache" / "git" / ("0" * 64)), "data dir"),
               (bob, str(server.data_dir), "data dir"),
               (None, "--upload-pack=touch /tmp/shoal-pwned", "'-'"), (bob, "ext::sh -c id", "runs a program")]
    for token, url, words in refused:
        answer = _create(server, token, url)
        assert answer.status_code == 400, (url, answer.text)
        assert "services[0].git.repo_clone_url" in answer.json()["message"] and words in answer.json()["message"]
    with server.http(bob) as http:
        answer = http.post("/v2/apps/propose", json={"spec": _spec(str(private))})
    assert answer.status_code == 400
