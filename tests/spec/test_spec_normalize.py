"""What check() returns: what DigitalOcean echoes and the routes → ingress rewrite (reference §4.12).

The defaults DigitalOcean only applies when running (issue 13 item 5: Terraform saw them as drift)
stay out of the returned spec; ``defaults.effective`` writes them out for comparing and running.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.spec.spec_corpus import SPECS

from shoal import spec
from shoal.spec.defaults import effective


def _check(text: str) -> dict[str, Any]:
    return spec.check(spec.load_text(text))


def test_minimal_service_reads_back_with_only_what_digitalocean_echoes() -> None:
    out = _check((SPECS / "valid" / "minimal-service.yaml").read_text())
    assert out == {
        "name": "sample-golang",
        "services": [{
            "name": "web",
            "github": {"repo": "digitalocean/sample-golang", "branch": "main"},
            "http_port": 8080,
        }],
        "ingress": {"rules": [{"match": {"path": {"prefix": "/"}}, "component": {"name": "web"}}]},
    }
    running = effective(out)
    assert running["region"] == "nyc"
    assert running["services"][0]["instance_size_slug"] == "apps-s-1vcpu-0.5gb"
    assert running["services"][0]["instance_count"] == 1
    assert "region" not in out  # effective copies


@pytest.mark.parametrize(("given", "slug"), [("ams3", "ams"), ("NYC1", "nyc"), ("fra", "fra"), (None, "nyc")])
def test_region_is_echoed_as_given_and_resolved_for_running(given: str | None, slug: str) -> None:
    raw: dict[str, Any] = {"name": "app"}
    if given:
        raw["region"] = given
    out = spec.check(raw)
    assert out.get("region") == given
    assert effective(out)["region"] == slug


def test_routes_and_cors_become_ingress_rules() -> None:
    out = _check("""
name: app
services:
  - name: api
    github: {repo: a/b}
    routes: [{path: /api, preserve_path_prefix: true}]
    cors: {allow_origins: [{exact: "https://x.example.com"}]}
static_sites:
  - name: site
    github: {repo: a/b}
    routes: [{path: /}]
""")
    assert "routes" not in out["services"][0] and "cors" not in out["services"][0]
    assert out["ingress"]["rules"] == [
        {"match": {"path": {"prefix": "/api"}}, "component": {"name": "api", "preserve_path_prefix": True},
         "cors": {"allow_origins": [{"exact": "https://x.example.com"}]}},
        {"match": {"path": {"prefix": "/"}}, "component": {"name": "site"}},
    ]


def test_component_cors_without_routes_joins_the_rules_for_that_component() -> None:
    out = _check("""
name: app
services:
  - {name: api, github: {repo: a/b}, cors: {allow_methods: [GET]}}
ingress:
  rules: [{match: {path: {prefix: /}}, component: {name: api}}]
""")
    assert out["ingress"]["rules"][0]["cors"] == {"allow_methods": ["GET"]}


def test_no_default_route_when_several_components_could_take_it() -> None:
    out = _check("name: app\nservices:\n  - {name: aa, github: {repo: a/b}}\n  - {name: bb, github: {repo: a/b}}\n")
    assert "ingress" not in out


def test_private_service_keeps_no_http_port_and_gets_no_route() -> None:
    out = _check("name: app\nservices:\n  - {name: aa, github: {repo: a/b}, internal_ports: [5000]}\n")
    assert "http_port" not in out["services"][0] and "ingress" not in out


def test_envs_jobs_static_sites_and_images_keep_running_defaults_out() -> None:
    out = _check("""
name: app
envs: [{key: A, scope: UNSET}]
jobs:
  - {name: jj, image: {registry_type: DOCR, repository: r}}
  - {name: kk, kind: SCHEDULE, schedule: {cron: "0 * * * *"}, github: {repo: a/b}}
static_sites: [{name: ss, github: {repo: a/b}}]
""")
    assert out["envs"] == [{"key": "A", "scope": "RUN_AND_BUILD_TIME"}]
    assert "kind" not in out["jobs"][0] and "tag" not in out["jobs"][0]["image"]
    assert out["jobs"][1]["kind"] == "SCHEDULED"
    assert "index_document" not in out["static_sites"][0]
    running = effective(out)
    assert running["envs"] == [{"key": "A", "scope": "RUN_AND_BUILD_TIME", "type": "GENERAL"}]
    assert running["jobs"][0]["kind"] == "POST_DEPLOY" and running["jobs"][0]["image"]["tag"] == "latest"
    assert running["static_sites"][0]["index_document"] == "index.html"


def test_autoscaling_has_no_instance_count_and_a_cpu_target() -> None:
    out = _check("""
name: app
workers:
  - {name: ww, github: {repo: a/b}, instance_size_slug: apps-d-1vcpu-1gb,
     autoscaling: {min_instance_count: 1, max_instance_count: 2, metrics: {cpu: {}}}}
""")
    worker = out["workers"][0]
    assert "instance_count" not in worker and worker["autoscaling"]["metrics"]["cpu"]["percent"] == 80


def test_lenient_spellings_are_normalised() -> None:
    out = _check("""
name: app
domains: [{domain: app.example.com, minimum_tls_version: 1.3}]
static_sites: [{name: ss, github: {repo: a/b}, routes: [{path: /, preserve_path_prefix: "true"}]}]
""")
    assert out["domains"][0]["minimum_tls_version"] == "1.3"
    assert out["ingress"]["rules"][0]["component"]["preserve_path_prefix"] is True


def test_nulls_mean_unset() -> None:
    out = spec.check({"name": "app", "region": None, "services": None, "envs": [{"key": "A", "value": None}]})
    assert out == {"name": "app", "envs": [{"key": "A", "scope": "RUN_AND_BUILD_TIME"}]}
