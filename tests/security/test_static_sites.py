"""A static site tries to serve files from outside its build: every attempt gets a 404 or is refused.

Three layers, each tested on its own: the spec rules refuse document names that leave the site,
the build refuses an ``output_dir`` (or ``source_dir``) that is a link out of the repository, and
the ingress's static server checks the real path of every file it serves — documents included,
so a spec stored before the rules existed cannot escape either.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from shoal.domain.deployments import StepFailed
from shoal.domain.plan import units_of
from shoal.ingress.static import static_response
from shoal.ingress.table import StaticSite
from shoal.runtime.local.build import Builder
from shoal.spec import SpecInvalid, check
from tests.conftest import unique_name, wait_deployment
from tests.e2e.apps import commit, git, make_repo
from tests.live import LiveServer

SECRET = "top secret outside the site\n"
TRAVERSALS = ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
              "//etc/passwd", "/outside-link", "/dir-link/secret.txt", "/sub/../../secret.txt"]


def _site(tmp_path: Path) -> tuple[Path, Path]:
    """A built site beside a secret file, with links inside it that point out."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    root = tmp_path / "build" / "public"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "sub" / "page.html").write_text("<h1>page</h1>")
    os.symlink(secret, root / "outside-link")
    os.symlink(tmp_path, root / "dir-link")
    return root, secret


def _body(response: Any) -> bytes:
    path = getattr(response, "path", None)
    return Path(path).read_bytes() if path else bytes(response.body)


@pytest.mark.parametrize("document", ["index_document", "error_document", "catchall_document"])
@pytest.mark.parametrize("name", ["../../secret.txt", "sub/../../../secret.txt", "/etc/passwd", "outside-link",
                                  "dir-link/secret.txt"])
def test_a_stored_document_name_cannot_leave_the_site(tmp_path: Path, document: str, name: str) -> None:
    root, secret = _site(tmp_path)
    names = {"index_document": "index.html", "error_document": None, "catchall_document": None, document: name}
    for path in ("/", "/sub/", "/missing"):
        response = static_response(StaticSite(root, **names), path)  # type: ignore[arg-type]
        body = _body(response)
        assert SECRET.encode() not in body and b"root:" not in body
        if path == "/missing" or document == "index_document":
            assert response.status_code == 404


@pytest.mark.parametrize("path", [t.replace("%2e", ".").replace("%2f", "/") for t in TRAVERSALS])
def test_paths_and_links_out_of_the_site_are_not_found(tmp_path: Path, path: str) -> None:
    root, _ = _site(tmp_path)
    response = static_response(StaticSite(root), path)
    assert response.status_code == 404 and SECRET.encode() not in _body(response)
    assert static_response(StaticSite(root), "/sub/page.html").status_code == 200


def test_a_site_swapped_for_a_link_after_its_build_serves_nothing(tmp_path: Path) -> None:
    root, _ = _site(tmp_path)
    moved = tmp_path / "build" / "moved"
    root.rename(moved)
    os.symlink(tmp_path, root)  # the site's root now points at the directory holding the secret
    response = static_response(StaticSite(root), "/secret.txt")
    assert response.status_code == 404 and SECRET.encode() not in _body(response)


@pytest.mark.parametrize(("field", "value"), [("output_dir", "site"), ("output_dir", ""), ("source_dir", "web")])
def test_the_build_refuses_a_committed_link_out_of_the_repository(tmp_path: Path, field: str, value: str) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text(SECRET)
    # output_dir "site" → site is a link; no output_dir → the default dir "public" is a link.
    os.symlink(outside, checkout / (value or "public"))
    spec: dict[str, Any] = {"name": "site", "github": {"repo": "a/b"}, "build_command": "true",
                            **({field: value} if value else {})}
    unit = units_of({"name": "app", "static_sites" if field == "output_dir" else "services": [spec]})[0]
    with pytest.raises(StepFailed) as failed:
        asyncio.run(Builder(tmp_path / "builds").build(app_id="app-1", unit=unit, commit="0" * 40, checkout=checkout,
                                                       build_env={}, force=False, log=lambda line: None))
    assert failed.value.code == "BuildJobFailed" and "outside the build" in failed.value.message


@pytest.mark.parametrize("document", ["index_document", "error_document", "catchall_document"])
def test_the_spec_refuses_document_names_that_leave_the_site(document: str) -> None:
    for name in ("../../../../etc/passwd", "../../../../../../admin-token", "/etc/passwd", "a/../../b"):
        site = {"name": "site", "github": {"repo": "a/b"}, document: name}
        with pytest.raises(SpecInvalid) as invalid:
            check({"name": "docs", "static_sites": [site]})
        assert [p.path for p in invalid.value.problems] == [f"static_sites[0].{document}"]
    check({"name": "docs", "static_sites": [{"name": "site", "github": {"repo": "a/b"}, document: "errors/404.html"}]})


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("static")
    server = LiveServer(data_dir=root / "data", runtime="local").start()
    yield server, root
    server.stop()


def _ingress(server: LiveServer, host: str, path: str) -> httpx.Response:
    # A raw target: httpx would normalise the dots away before the ingress saw them.
    with httpx.Client(base_url=f"http://127.0.0.1:{server.ingress_port}", timeout=10) as http:
        request = http.build_request("GET", "/", headers={"host": host})
        request.url = request.url.copy_with(raw_path=path.encode())
        return http.send(request)


def test_a_deployed_site_answers_404_to_every_traversal(local: Any) -> None:
    server, root = local
    data_dir = server.data_dir
    repo = make_repo(root / "site", {"public/index.html": "<h1>home</h1>\n", "public/404.html": "not here\n"})
    os.symlink("/etc/passwd", repo / "public" / "outside-link")
    os.symlink(str(data_dir), repo / "public" / "dir-link")
    commit(repo, "links out")
    client = server.client()
    spec = {"name": unique_name("site"), "static_sites": [
        {"name": "site", "git": {"repo_clone_url": str(repo), "branch": "main"}, "error_document": "404.html"}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)
    assert dep["phase"] == "ACTIVE", dep["progress"]
    host = client.apps.get(created["id"])["app"]["live_domain"]
    assert _ingress(server, host, "/").status_code == 200
    token = (data_dir / "admin-token").read_text().strip()
    for path in [*TRAVERSALS, "/dir-link/admin-token", "/dir-link/secrets.key", "/../../../../../../admin-token"]:
        answer = _ingress(server, host, path)
        assert answer.status_code == 404, path
        assert "root:" not in answer.text and token not in answer.text, path


def test_traversal_documents_are_refused_by_the_api(local: Any) -> None:
    server, _ = local
    spec = {"name": unique_name("docs"), "static_sites": [
        {"name": "site", "github": {"repo": "a/b"}, "index_document": "../../../../etc/passwd"}]}
    with server.http() as http:
        answer = http.post("/v2/apps", json={"spec": spec})
    assert answer.status_code == 400 and "static_sites[0].index_document" in answer.json()["message"]


def test_a_symlinked_output_dir_fails_the_build(local: Any) -> None:
    server, root = local
    repo = make_repo(root / "linked", {"README": "a site whose output_dir is a link\n"})
    os.symlink("/etc", repo / "site")
    git(repo, "add", "-A")
    commit(repo, "site -> /etc")
    client = server.client()
    spec = {"name": unique_name("linked"), "static_sites": [
        {"name": "site", "git": {"repo_clone_url": str(repo), "branch": "main"}, "output_dir": "site"}]}
    created = client.apps.create(body={"spec": spec})["app"]
    dep = wait_deployment(client, created["id"], created["pending_deployment"]["id"], timeout=120)
    assert dep["phase"] == "ERROR"
    assert "outside the build" in str(dep["progress"])
