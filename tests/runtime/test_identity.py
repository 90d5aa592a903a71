"""App identities: allocated once per app, recorded, reused after a restart, never handed on."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from shoal.runtime.local.identity import Identities, reachable_by_others, unreachable_parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to other users")


def test_each_app_gets_its_own_uid_kept_across_restarts_and_never_reused(tmp_path: Path) -> None:
    record, apps = tmp_path / "runtime" / "identities.json", tmp_path / "apps"
    first = Identities(record, apps, base_uid=1_900_100_000)
    a, b = first.of("app-a"), first.of("app-b")
    assert a.uid != b.uid and a.gid == a.uid and a.uid >= 1_900_100_000
    again = Identities(record, apps, base_uid=1_900_100_000)  # shoal restarted
    assert again.of("app-a").uid == a.uid and again.of("app-b").uid == b.uid
    again.forget("app-a")
    assert again.of("app-c").uid not in (a.uid, b.uid)
    assert again.of("app-a").uid not in (a.uid, b.uid)  # a new app of the same id: a new user
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_an_apps_tree_is_its_own_and_private(tmp_path: Path) -> None:
    identity = Identities(tmp_path / "ids.json", tmp_path / "apps", base_uid=1_900_200_000).of("app-a")
    for folder in (identity.root, identity.home, identity.tmp):
        info = folder.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (identity.uid, identity.gid, 0o700)
    assert identity.env() == {"HOME": str(identity.home), "TMPDIR": str(identity.tmp)}


def test_uids_that_belong_to_someone_are_skipped(tmp_path: Path) -> None:
    taken = pwd.getpwnam("nobody").pw_uid
    assert Identities(tmp_path / "ids.json", tmp_path / "apps", base_uid=taken).of("app-a").uid == taken + 1


def test_giving_a_tree_never_follows_a_link_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("root's")
    identity = Identities(tmp_path / "ids.json", tmp_path / "apps", base_uid=1_900_300_000).of("app-a")
    tree = identity.root / "build"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    (tree / "link").symlink_to(outside)
    identity.own(tree)
    assert (tree / "sub" / "file").stat().st_uid == identity.uid and (tree / "link").lstat().st_uid == identity.uid
    assert outside.stat().st_uid == 0


def test_reachability(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "tool").write_text("#!/bin/sh\n")
    os.chmod(hidden / "tool", 0o755)
    os.chmod(hidden, 0o700)
    assert not reachable_by_others(hidden / "tool", execute=True)
    assert unreachable_parent(hidden / "tool") is not None
    assert reachable_by_others(Path("/bin/sh"), execute=True) and unreachable_parent(Path("/bin/sh")) is None
