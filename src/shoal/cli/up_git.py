"""``shoal up``'s view of the git checkout it runs in: the spec to deploy, and a snapshot of the working tree.

A snapshot is a commit of everything in the working tree that git does not ignore, uncommitted and
untracked files included. It is made with a throw-away index (a copy of the real one, for its stat
cache), so the user's branch, index and stash are never touched, and nothing is pushed anywhere but
to a bare repository inside the checkout's own git dir (``.git/shoal-up/APP.git``) that the local
runtime clones from — not under the data dir, which shoal never builds from.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.cli.output import EXIT_API, EXIT_USAGE, CliError

SPEC_PATHS = (".do/app.yaml", ".do/deploy.template.yaml")
COMPONENT_KINDS = ("services", "workers", "jobs", "static_sites", "functions")
SOURCE_KEYS = ("git", "github", "gitlab", "bitbucket", "image")
HOSTED = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
SNAPSHOT_BRANCH = "main"
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")  # git@host:owner/repo
# Identity of the snapshot commits: they never leave this machine, and must not need the user's config.
_IDENTITY = {"GIT_AUTHOR_NAME": "shoal up", "GIT_AUTHOR_EMAIL": "shoal@localhost",
             "GIT_COMMITTER_NAME": "shoal up", "GIT_COMMITTER_EMAIL": "shoal@localhost"}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git; its output, or a ``CliError`` with git's own last lines."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120,
                              env={**os.environ, **(env or {})})
    except OSError as exc:
        raise CliError(f"cannot run git: {exc}", EXIT_USAGE) from exc
    if done.returncode != 0:
        reason = " ".join(done.stderr.strip().splitlines()[-2:]) or f"exit status {done.returncode}"
        raise CliError(f"git {args[0]} failed: {reason}", EXIT_API)
    return done.stdout.strip()


def checkout_root(cwd: Path) -> Path | None:
    """The top of the git working tree ``cwd`` is in, or None outside one."""
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                              check=False, timeout=30)
    except OSError:
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def snapshot_repo(root: Path, app_name: str) -> Path:
    """Where the snapshots of ``root`` for ``app_name`` are kept: in the checkout's git dir (a
    worktree's common one), so they go when the checkout goes and are never committed."""
    common = Path(git(root, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    return common / "shoal-up" / f"{app_name}.git"


def find_spec(root: Path) -> Path:
    for relative in SPEC_PATHS:
        if (root / relative).is_file():
            return root / relative
    raise CliError(f"no app spec: neither {' nor '.join(SPEC_PATHS)} exists in {root}; pass the spec file "
                   "as an argument", EXIT_USAGE)


def normalise_url(url: str) -> str:
    """``host/owner/repo`` for any way of writing a repository's URL (scheme, user@, .git, scp-like)."""
    text = url.strip().rstrip("/")
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("@", 1)[-1] if "@" in text.split("/", 1)[0] else text
    else:
        scp = _SCP_LIKE.match(text)
        if scp and not text.startswith("/"):
            text = f"{scp.group(1)}/{scp.group(2)}"
    text = text.removesuffix(".git").rstrip("/")
    host, _, rest = text.partition("/")
    host = host.rsplit(":", 1)[0] if re.search(r":\d+$", host) else host  # drop a port
    return f"{host.lower()}/{rest}" if rest else host.lower()


def remote_urls(root: Path) -> set[str]:
    """The normalised fetch and push URLs of every remote of the checkout."""
    found: set[str] = set()
    for line in git(root, "remote", "-v").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found.add(normalise_url(parts[1]))
    return found


def _component_repo(component: dict[str, Any]) -> str | None:
    """The normalised repository a component builds from; ``""`` when it names no source at all."""
    for key in SOURCE_KEYS:
        block = component.get(key)
        if not isinstance(block, dict):
            continue
        if key == "git":
            return normalise_url(str(block.get("repo_clone_url", "")))
        if key in HOSTED:
            return normalise_url(f"{HOSTED[key]}/{block.get('repo', '')}")
        return None  # an image: nothing to build here
    return ""


@dataclass(frozen=True)
class Mapping:
    spec: dict[str, Any]
    local: list[str]  # the components now built from the working tree


def map_to_snapshot(spec: dict[str, Any], remotes: set[str], snapshot_repo: Path) -> Mapping:
    """``spec`` with every component of this repository (or with no source) built from ``snapshot_repo``."""
    mapped = copy.deepcopy(spec)
    local: list[str] = []
    for kind in COMPONENT_KINDS:
        for component in mapped.get(kind) or []:
            if not isinstance(component, dict):
                continue
            repo = _component_repo(component)
            if repo is None or (repo and repo not in remotes):
                continue
            for key in SOURCE_KEYS:
                component.pop(key, None)
            component["git"] = {"repo_clone_url": str(snapshot_repo), "branch": SNAPSHOT_BRANCH}
            local.append(str(component.get("name", "?")))
    return Mapping(spec=mapped, local=local)


def snapshot(root: Path, bare: Path) -> str:
    """Commit the working tree as it is and force it to ``bare``'s main branch; the commit's sha."""
    index = Path(git(root, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    with tempfile.TemporaryDirectory(prefix="shoal-up-") as scratch:
        temp_index = Path(scratch) / "index"
        if index.is_file():
            shutil.copyfile(index, temp_index)
        env = {"GIT_INDEX_FILE": str(temp_index), **_IDENTITY}
        git(root, "add", "--all", "--", ".", env=env)
        tree = git(root, "write-tree", env=env)
    parent = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=root,
                            capture_output=True, text=True, check=False).stdout.strip()
    commit = git(root, "commit-tree", tree, *(["-p", parent] if parent else []),
                 "-m", "shoal up: snapshot of the working tree", env=_IDENTITY)
    if not (bare / "HEAD").is_file():
        bare.mkdir(parents=True, exist_ok=True)
        git(bare, "init", "--bare", "--quiet")
        git(bare, "symbolic-ref", "HEAD", f"refs/heads/{SNAPSHOT_BRANCH}")
    git(root, "push", "--force", "--quiet", "--no-verify", str(bare), f"{commit}:refs/heads/{SNAPSHOT_BRANCH}")
    return commit
