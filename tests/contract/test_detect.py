"""``POST /v2/apps/detect`` as godo's ``AppsService.Detect`` sends it (issue 13 item 2): a JSON
``DetectRequest`` with a bearer token, the ``DetectResponse`` decoded from the body's root.

Against a real ``shoal serve`` and real git repositories made in temp dirs (the admin account may build
from local paths, as for a deployment; another account may not)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.apps import commit, git, make_repo
from tests.live import UNLIMITED, LiveServer

GODO = {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": "godo/1.160.0"}
PY_PROCFILE = {"requirements.txt": "flask\n", "Procfile": "web: gunicorn app:app\n", "app.py": "app = None\n"}
TEMPLATE_OK = """\
spec:
  name: sample-python
  services:
  - name: web
    git:
      repo_clone_url: https://example.com/sample-python.git
      branch: main
    environment_slug: python
    run_command: gunicorn app:app
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path_factory.mktemp("shoal-detect") / "data", extra_args=UNLIMITED)
    server.start()
    yield server
    server.stop()


def detect(live: LiveServer, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    """One request exactly as godo makes it: POST, JSON body, bearer token."""
    with live.http(token) as http:
        return http.post("/v2/apps/detect", content=json.dumps(body).encode(), headers=GODO, timeout=150)


def detected(live: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    answer = detect(live, body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def refused(live: LiveServer, body: dict[str, Any], status: int, token: str | None = None) -> str:
    answer = detect(live, body, token)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"id", "message", "request_id"}
    return str(error["message"])


def git_source(repo: Path, branch: str | None = "main") -> dict[str, Any]:
    return {"git": {"repo_clone_url": str(repo), **({"branch": branch} if branch else {})}}


def test_a_python_app_is_built_with_the_python_buildpack(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    body = detected(live, git_source(repo))
    assert set(body) == {"components"}  # no template, never pending: every empty field is left out
    [component] = body["components"]
    assert component["strategy"] == "BUILDPACK"
    assert component["types"] == ["Python"]
    assert component["environment_slug"] == "python"
    assert component["run_command"] == "gunicorn app:app"
    assert component["http_ports"] == [8080]
    [pack] = component["buildpacks"]
    with live.http() as http:
        listed = {b["id"]: b for b in http.get("/v2/apps/buildpacks", headers=GODO).json()["buildpacks"]}
    assert pack == listed["digitalocean/python"]  # the same object the buildpack list shows
    assert pack["version"] and pack["major_version"] >= 1


def test_the_default_branch_is_used_without_one(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "py", {"requirements.txt": "", "main.py": "print('hi')\n"})
    [component] = detected(live, git_source(repo, branch=None))["components"]
    assert component["types"] == ["Python"] and component["run_command"] == "python main.py"


def test_a_dockerfile_wins_and_its_exposed_port_is_answered(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "docker", {"Dockerfile": "FROM python:3.12\nEXPOSE 3000/tcp\n",
                                           "requirements.txt": ""})
    [component] = detected(live, git_source(repo))["components"]
    assert component["strategy"] == "DOCKERFILE"
    assert component["dockerfiles"] == ["Dockerfile"]
    assert component["http_ports"] == [3000]
    assert "buildpacks" not in component


def test_a_plain_html_site_is_html(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "site", {"index.html": "<h1>hi</h1>\n"})
    [component] = detected(live, git_source(repo))["components"]
    assert component["strategy"] == "HTML"
    assert component["types"] == ["HTML"]
    assert component["environment_slug"] == "html"
    assert "http_ports" not in component and "run_command" not in component


def test_source_dir_looks_at_a_subdirectory(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "mono", {
        **PY_PROCFILE,
        "api/package.json": json.dumps({"name": "api", "scripts": {"start": "node server.js"}}),
        "api/server.js": "",
    })
    [component] = detected(live, {**git_source(repo), "source_dir": "/api"})["components"]
    assert component["strategy"] == "BUILDPACK"
    assert component["types"] == ["Node.js"]
    assert component["environment_slug"] == "node-js"
    assert component["run_command"] == "npm start"
    assert component["source_dir"] == "/api"
    assert [b["id"] for b in component["buildpacks"]] == ["digitalocean/node"]
    message = refused(live, {**git_source(repo), "source_dir": "/missing"}, 422)
    assert "source_dir" in message and "missing" in message


def test_commit_sha_looks_at_an_older_commit(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "history", {"index.html": "<h1>old</h1>\n"})
    old = git(repo, "rev-parse", "HEAD")
    git(repo, "rm", "-q", "index.html")
    commit(repo, "now python", {"requirements.txt": "", "app.py": ""})
    assert detected(live, git_source(repo))["components"][0]["types"] == ["Python"]
    assert detected(live, {**git_source(repo), "commit_sha": old})["components"][0]["strategy"] == "HTML"
    message = refused(live, {**git_source(repo), "commit_sha": "0" * 40}, 422)
    assert "0000000" in message and "not found" in message


def test_a_valid_deploy_template_is_answered_with_its_spec(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "template", {**PY_PROCFILE, ".do/deploy.template.yaml": TEMPLATE_OK})
    body = detected(live, git_source(repo))
    assert body["template_found"] is True and body["template_valid"] is True
    assert "template_error" not in body
    spec = body["template"]["spec"]
    assert spec["name"] == "sample-python"
    assert spec["services"][0]["git"]["repo_clone_url"] == "https://example.com/sample-python.git"
    assert body["components"][0]["types"] == ["Python"]


def test_an_invalid_deploy_template_says_why(live: LiveServer, tmp_path: Path) -> None:
    bad = TEMPLATE_OK.replace("name: sample-python", "name: Not_A_Name")
    repo = make_repo(tmp_path / "bad-template", {**PY_PROCFILE, ".do/deploy.template.yaml": bad})
    body = detected(live, git_source(repo))
    assert body["template_found"] is True
    assert "template_valid" not in body and "template" not in body
    assert '"name"' in body["template_error"]
    broken = make_repo(tmp_path / "broken", {**PY_PROCFILE, ".do/deploy.template.yaml": "spec: [unclosed\n"})
    body = detected(live, git_source(broken))
    assert body["template_found"] is True and "YAML" in body["template_error"]


def test_a_functions_project_is_serverless(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fn", {
        "project.yml": "packages:\n- name: sample\n  actions:\n  - name: hello\n    runtime: python:3.11\n"
                       "    limits:\n      timeout: 5000\n      memory: 512\n",
        "packages/sample/hello.py": "def main(args):\n    return {'body': 'hi'}\n",
    })
    [component] = detected(live, git_source(repo))["components"]
    assert component["strategy"] == "SERVERLESS"
    [package] = component["serverless_packages"]
    assert package["name"] == "sample"
    assert package["functions"] == [{"name": "hello", "package": "sample", "runtime": "python:3.11",
                                     "limits": {"timeout": "5000", "memory": "512", "logs": "16"}}]


def test_a_tree_without_anything_known_has_no_components(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "nothing", {"README.md": "hi\n"})
    assert detected(live, git_source(repo)) == {}


def test_bad_requests_name_the_field(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    assert "git" in refused(live, {}, 400)
    assert "git" in refused(live, {"source_dir": "/"}, 400)
    assert "git.repo_clone_url" in refused(live, {"git": {"branch": "main"}}, 400)
    assert "github.repo" in refused(live, {"github": {"repo": "no-slash", "branch": "main"}}, 400)
    assert "git.branch" in refused(live, {"git": {"repo_clone_url": str(repo), "branch": "--upload-pack=x"}}, 400)
    assert "git.depth" in refused(live, {"git": {"repo_clone_url": str(repo), "depth": 1}}, 400)
    assert "'surprise'" in refused(live, {**git_source(repo), "surprise": True}, 400)
    assert "commit_sha" in refused(live, {**git_source(repo), "commit_sha": "HEAD~1"}, 400)
    assert "source_dir" in refused(live, {**git_source(repo), "source_dir": "../../etc"}, 400)
    assert "only one source" in refused(live, {**git_source(repo), "github": {"repo": "a/b"}}, 400)


def test_sources_a_deployment_may_not_use_are_refused(live: LiveServer, tmp_path: Path) -> None:
    assert "data dir" in refused(live, {"git": {"repo_clone_url": str(live.data_dir)}}, 400)
    assert "data dir" in refused(live, {"git": {"repo_clone_url": f"file://{live.data_dir}/cache/git"}}, 400)
    assert "transport::address" in refused(live, {"git": {"repo_clone_url": "ext::sh -c touch% /tmp/x"}}, 400)
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    other = live.create_token("app:create", account="someone-else")
    message = refused(live, git_source(repo), 400, token=other)
    assert "git.repo_clone_url" in message and "local paths" in message


def test_missing_repositories_and_branches_are_clear_4xx(live: LiveServer, tmp_path: Path) -> None:
    missing = refused(live, {"git": {"repo_clone_url": str(tmp_path / "nowhere"), "branch": "main"}}, 422)
    assert "nowhere" in missing
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    branch = refused(live, git_source(repo, branch="release"), 422)
    assert "'release'" in branch and "main" in branch
    # No internet here: a GitHub source fails the way a deployment's fetch would, with git's reason.
    hosted = refused(live, {"github": {"repo": "digitalocean/sample-python", "branch": "main"}}, 422)
    assert "github.com/digitalocean/sample-python" in hosted


def test_a_token_without_app_create_is_forbidden(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    reader = live.create_token("app:read")
    assert "app:create" in refused(live, git_source(repo), 403, token=reader)


def test_links_out_of_the_repository_are_not_read_back(live: LiveServer, tmp_path: Path) -> None:
    elsewhere = tmp_path / "server-file"
    elsewhere.write_text("web: the-server-s-secret\n")
    repo = make_repo(tmp_path / "py", {"requirements.txt": "", "main.py": ""})
    (repo / "Procfile").symlink_to(elsewhere)
    commit(repo, "link")
    [component] = detected(live, git_source(repo))["components"]
    assert component["run_command"] == "python main.py"
    assert "secret" not in json.dumps(component)


def test_nothing_fetched_is_kept(live: LiveServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "py", PY_PROCFILE)
    detected(live, git_source(repo))
    scratch = live.data_dir / "cache" / "detect"
    assert not scratch.exists() or list(scratch.iterdir()) == []
