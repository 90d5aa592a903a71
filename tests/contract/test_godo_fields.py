"""Spec fields godo and Terraform send that the bundled OpenAPI lacks, and the spec as it reads
back (issue 13 items 4 and 5), through pydo against a live server.

Every field is accepted, validated, stored and returned as sent; the defaults DigitalOcean only
applies when running are not written into the spec, so Terraform's second plan is empty.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import error_body, unique_name, wait_deployment

GIT = {"repo_clone_url": "https://example.com/repo.git", "branch": "main"}


def godo_spec(name: str) -> dict[str, Any]:
    """A spec shaped like a Terraform ``digitalocean_app`` with every godo-only field set."""
    return {
        "name": name,
        "features": ["buildpack-stack=ubuntu-22"],
        "egress": {"type": "DEDICATED_IP"},
        "ingress": {
            "load_balancer": "DIGITALOCEAN", "load_balancer_size": 2,
            "secure_header": [{"key": "X-Frame-Options", "value": "DENY"},
                              {"key": "Server", "remove_header": True}],
        },
        "domains": [{"domain": "shop.example.com", "type": "PRIMARY", "certificate": "cert-id-1"}],
        "services": [{
            "name": "web", "git": GIT,
            "inactivity_sleep": {"after_seconds": 600, "loading_page": {"enabled": True}},
            "log_destinations": [{"name": "generic", "endpoint": "https://logs.example.com/in",
                                  "headers": [{"key": "Authorization", "value": "Bearer x"}],
                                  "tls_insecure": True}],
            "envs": [{"key": "PLAIN", "value": "1"}],
        }],
        "jobs": [{"name": "migrate", "git": GIT, "kind": "PRE_DEPLOY", "timeout": "1h30m"},
                 {"name": "notify", "git": GIT}],
        "static_sites": [{"name": "site", "git": GIT}],
        "workers": [{"name": "queue", "image": {"registry_type": "DOCKER_HUB", "registry": "library",
                                                  "repository": "busybox"}}],
        "databases": [{"name": "db", "engine": "PG", "production": True, "cluster_name": "main",
                       "size": "db-s-1vcpu-1gb", "num_nodes": 1}],
    }


def test_godo_fields_are_accepted_stored_and_returned_as_sent(client: Any) -> None:
    sent = godo_spec(unique_name("godo"))
    app = client.apps.create(body={"spec": sent})["app"]
    got = client.apps.get(app["id"])["app"]
    spec = got["spec"]
    assert spec["ingress"]["secure_header"] == sent["ingress"]["secure_header"]
    assert spec["ingress"]["load_balancer"] == "DIGITALOCEAN" and spec["ingress"]["load_balancer_size"] == 2
    assert spec["features"] == sent["features"]
    assert spec["services"][0]["inactivity_sleep"] == sent["services"][0]["inactivity_sleep"]
    assert spec["services"][0]["log_destinations"] == sent["services"][0]["log_destinations"]
    assert spec["jobs"][0]["timeout"] == "1h30m"
    assert spec["databases"][0] == sent["databases"][0]
    assert spec["domains"][0]["certificate"] == "cert-id-1"
    # Nothing DigitalOcean applies only when running was written in (Terraform drift, item 5).
    assert "region" not in spec
    assert {"instance_count", "instance_size_slug"}.isdisjoint(spec["services"][0])
    assert "type" not in spec["services"][0]["envs"][0]
    assert "index_document" not in spec["static_sites"][0]
    assert "kind" not in spec["jobs"][1]
    assert "tag" not in spec["workers"][0]["image"]
    assert got["region"]["slug"] == "nyc"  # the app's region object still names where it runs
    # egress DEDICATED_IP: an address is shown, ASSIGNED (a documentation address: shoal's
    # egress is this machine's own).
    [ip] = got["dedicated_ips"]
    assert ip["status"] == "ASSIGNED" and ip["ip"].startswith("192.0.2.") and ip["id"]
    client.apps.delete(app["id"])


def test_the_read_back_spec_re_applied_is_a_no_op(client: Any) -> None:
    sent = {"name": unique_name("again"), "services": [{"name": "web", "git": GIT, "envs": [
        {"key": "TOKEN", "value": "plain-secret", "type": "SECRET"}, {"key": "A", "value": "1"}]}]}
    app = client.apps.create(body={"spec": sent})["app"]
    first = wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    read = client.apps.get(app["id"])["app"]["spec"]
    sealed = read["services"][0]["envs"][0]["value"]
    assert sealed.startswith("EV[1:")
    again = client.apps.update(app["id"], body={"spec": read})["app"]
    assert again["spec"] == read and again["pending_deployment"]["id"] == first["id"]
    # The plaintext sent again seals to the same EV[...] (deterministic): still no deployment.
    plain = client.apps.update(app["id"], body={"spec": sent})["app"]
    assert plain["spec"]["services"][0]["envs"][0]["value"] == sealed
    assert plain["pending_deployment"]["id"] == first["id"]
    assert client.apps.list_deployments(app["id"])["meta"]["total"] == 1
    # pending_deployment stays filled once that deployment is ACTIVE: godo PR #601 documents it as
    # "the most recent non-cancelled deployment" on Get and List too.
    assert client.apps.get(app["id"])["app"]["pending_deployment"]["phase"] == "ACTIVE"
    client.apps.delete(app["id"])


def test_deployments_carry_cause_details_and_timing(client: Any) -> None:
    app = client.apps.create(body={"spec": {"name": unique_name("timing"), "services": [{"name": "web", "git": GIT}],
                                            "databases": [{"name": "db", "engine": "PG"}]}})["app"]
    dep = wait_deployment(client, app["id"], app["pending_deployment"]["id"])
    assert dep["cause_details"]["type"] == "MANUAL"
    assert dep["cause_details"]["digitalocean_user_action"]["name"] == "CREATE_DEPLOYMENT"
    timing = dep["timing"]
    assert {"pending", "build_total", "build_billable", "deploying", "database_provision"} <= set(timing)
    assert [c["name"] for c in timing["components"]] == ["web"]
    assert timing["components"][0]["build_billable"].endswith("s")
    client.apps.delete(app["id"])


@pytest.mark.parametrize(("patch", "path", "fragment"), [
    ({"ingress": {"secure_header": [{"key": "Bad Name", "value": "x"}]}}, "ingress.secure_header[0].key",
     "is not an HTTP header name"),
    ({"ingress": {"secure_header": [{"key": "X-A", "value": "a\r\nSet-Cookie: x"}]}},
     "ingress.secure_header[0].value", "line breaks"),
    ({"ingress": {"secure_header": [{"key": "X-A"}]}}, "ingress.secure_header[0].value", "is required"),
    ({"ingress": {"load_balancer": "NGINX"}}, "ingress.load_balancer", ""),
    ({"services": [{"name": "web", "git": GIT, "log_destinations": [
        {"name": "gen", "endpoint": "ftp://x"}]}]}, "services[0].log_destinations[0].endpoint", "http"),
    ({"services": [{"name": "web", "git": GIT, "log_destinations": [
        {"name": "gen", "logtail": {"token": "t"}, "headers": [{"key": "A", "value": "b"}]}]}]},
     "services[0].log_destinations[0].headers", "set endpoint"),
    ({"jobs": [{"name": "jj", "git": GIT, "timeout": "forever"}]}, "jobs[0].timeout", "duration"),
])
def test_godo_fields_are_validated(client: Any, patch: dict[str, Any], path: str, fragment: str) -> None:
    spec = {"name": unique_name("bad"), "services": [{"name": "web", "git": GIT}], **patch}
    with pytest.raises(HttpResponseError) as raised:
        client.apps.create(body={"spec": spec})
    assert raised.value.status_code == 400
    message = error_body(raised.value)["message"]
    assert path in message and fragment in message


@pytest.mark.parametrize("patch", [
    {"services": [{"name": "web", "git": GIT, "health_check": {"port": 9090, "http_path": "/health"},
                   "liveness_health_check": {"port": 9091}}]},  # neither http_port nor internal: DO accepts
    {"services": [{"name": "web", "git": GIT, "internal_ports": [5000], "routes": [{"path": "/"}]}]},
    {"services": [{"name": "web", "git": GIT, "health_check": {"http_path": ""}}]},
    {"services": [{"name": "web", "git": GIT, "instance_count": 2}]},  # no size chosen
    {"services": [{"name": "web", "git": GIT, "alerts": [{"rule": "UNSPECIFIED_RULE"}, {"operator": "GREATER_THAN"}],
                   "log_destinations": [{"name": "pt", "papertrail": {"endpoint": "logs.papertrailapp.com:12345"}}]}]},
    {"functions": [{"name": "fn", "git": GIT, "routes": [{"path": "/api", "preserve_path_prefix": True}]}]},
    {"services": [{"name": "web", "git": GIT, "envs": [{"key": "URL", "value": "${ghost.PRIVATE_URL}"}]}]},
], ids=["health-port", "private-routed", "empty-http-path", "count-no-size", "rules-and-papertrail",
        "functions-prefix", "unresolved-bindable"])
def test_specs_digitalocean_accepts_are_accepted(client: Any, patch: dict[str, Any]) -> None:
    """Rules shoal enforced that DigitalOcean does not (issue 13 item 6); each was a 400 before."""
    spec = {"name": unique_name("lenient"), **patch}
    proposal = client.apps.validate_app_spec(body={"spec": spec})
    assert proposal["spec"]["name"] == spec["name"]
    if "ghost" in str(patch):  # left verbatim, as DigitalOcean does; propose says so
        assert any("ghost" in w and "left as written" in w for w in proposal["warnings"])
    if "internal_ports" in str(patch):
        assert proposal["spec"]["services"][0]["http_port"] == 8080
