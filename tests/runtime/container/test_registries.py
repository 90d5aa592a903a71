"""Which registry an ``image`` source is pulled from (pure), and the private podman configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.runtime.container.conf import containers_conf_text, registries_conf_text, ulimits, write_podman_conf
from shoal.runtime.container.engine import DOCKER_SOCKET, choose_url
from shoal.runtime.container.registries import credentials, image_ref, parse_mirrors
from shoal.runtime.container.stack import Recipe, debian_mirror


@pytest.mark.parametrize(("image", "reference"), [
    ({"registry_type": "DOCKER_HUB", "registry": "digitalocean", "repository": "flask-hello"},
     "docker.io/digitalocean/flask-hello:latest"),
    ({"registry_type": "DOCKER_HUB", "registry": "registry.hub.docker.com", "repository": "nginx", "tag": "1.25"},
     "docker.io/library/nginx:1.25"),
    ({"registry_type": "GHCR", "registry": "octo", "repository": "api", "tag": "v2"}, "ghcr.io/octo/api:v2"),
    ({"registry_type": "DOCR", "repository": "myreg/api", "digest": "sha256:" + "a" * 64},
     "registry.digitalocean.com/myreg/api@sha256:" + "a" * 64),
])
def test_registry_types_map_to_their_registries(image: dict[str, str], reference: str) -> None:
    assert image_ref(image).reference == reference


def test_a_mirror_replaces_the_registry_host_only() -> None:
    mirrors = parse_mirrors(["ghcr.io=127.0.0.1:5000", "docker.io=mirror.local:443"])
    ref = image_ref({"registry_type": "GHCR", "registry": "octo", "repository": "api"}, mirrors)
    assert ref.reference == "127.0.0.1:5000/octo/api:latest"
    assert image_ref({"registry_type": "DOCKER_HUB", "registry": "x", "repository": "y"}, mirrors).registry \
        == "mirror.local:443"


@pytest.mark.parametrize("bad", ["docker.io", "=127.0.0.1:5000", "docker.io=", "docker.io=host/path"])
def test_a_malformed_mirror_is_refused_with_its_text(bad: str) -> None:
    with pytest.raises(ValueError, match="FROM=TO"):
        parse_mirrors([bad])


def test_credentials_split_at_the_first_colon() -> None:
    assert credentials("user:tok:en") == ("user", "tok:en")
    assert credentials("") is None


def test_engine_url_order() -> None:
    assert choose_url("tcp://h:2375", "unix:///p.sock", "unix:///d.sock")[0] == "tcp://h:2375"
    assert choose_url(None, "unix:///p.sock", "unix:///d.sock")[0] == "unix:///p.sock"
    assert choose_url(None, None, "unix:///d.sock")[0] == "unix:///d.sock"
    assert choose_url(None, None, None)[0] == DOCKER_SOCKET


def test_containers_conf_holds_runc_and_ulimits_within_the_hard_limits(tmp_path: Path) -> None:
    nofile, nproc = ulimits()
    text = containers_conf_text(nofile, nproc, "runc")
    assert f'"nofile={nofile}:{nofile}"' in text and 'runtime = "runc"' in text
    conf = write_podman_conf(tmp_path / "podman", {"docker.io": "127.0.0.1:5000"})
    assert conf.env()["CONTAINERS_CONF"] == str(tmp_path / "podman" / "containers.conf")
    assert 'prefix = "docker.io"' in conf.registries_conf.read_text()


def test_loopback_mirrors_are_plain_http_and_others_are_not() -> None:
    text = registries_conf_text({"docker.io": "127.0.0.1:5000", "ghcr.io": "cache.example.com"})
    blocks = text.split("[[registry]]")
    assert any('location = "127.0.0.1:5000"' in b and "insecure = true" in b for b in blocks)
    assert not any('location = "cache.example.com"' in b and "insecure" in b for b in blocks)


def test_debian_mirror_is_read_from_one_line_and_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://one.example/debian bookworm main\n")
    assert debian_mirror(tmp_path) == "http://one.example/debian"


def test_the_stack_recipe_key_follows_the_packages() -> None:
    assert Recipe().key == Recipe().key
    assert Recipe(packages=("git",)).key != Recipe().key
