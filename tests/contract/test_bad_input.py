"""Bad input: each gets DigitalOcean's error shape, the right 4xx, a message naming the problem, and no write."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import service_spec, unique_name
from tests.live import LiveServer


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.http() as client:
        yield client


def assert_error(response: httpx.Response, status: int, error_id: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"id", "message", "request_id"}
    assert body["id"] == error_id
    assert body["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word.lower() in body["message"].lower(), body["message"]
    for header in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert response.headers[header].isdigit()


def app_count(http: httpx.Client) -> int:
    return int(http.get("/v2/apps", params={"per_page": 1}).json()["meta"]["total"])


@pytest.mark.parametrize(("body", "content_type", "words"), [
    (b'{"spec": {"name": "x"', "application/json", ["invalid JSON", "line 1"]),
    (b"spec: [unclosed", "application/yaml", ["invalid YAML", "line"]),
    (b"", "application/json", ["empty"]),
    (b"[1, 2]", "application/json", ["expected an object", "array"]),
    (b'"just a string"', "application/json", ["expected an object", "string"]),
    (b"{}", "application/json", ["missing", "spec"]),
    (b'{"spec": null}', "application/json", ["missing", "spec"]),
    (b'{"spec": {"name": "ok-name"}, "colour": "blue"}', "application/json", ["unknown field", "colour"]),
    (b"\xff\xfe\x00", "application/json", ["UTF-8"]),
    # Unpaired surrogate escapes (schemathesis found a 500: the error echoing them could not be encoded).
    (b'{"spec": {"name": "ok-name", "\\udbc3": 1}}', "application/json", ["not valid Unicode"]),
    (b'spec: {name: ok-name, "\\udbc3x": 1}', "application/yaml", ["not valid Unicode"]),
])
def test_malformed_create_bodies(http: httpx.Client, body: bytes, content_type: str, words: list[str]) -> None:
    before = app_count(http)
    response = http.post("/v2/apps", content=body, headers={"content-type": content_type})
    assert_error(response, 400, "bad_request", *words)
    assert app_count(http) == before


def test_wrong_types_in_the_spec_are_invalid_arguments(http: httpx.Client) -> None:
    before = app_count(http)
    response = http.post("/v2/apps", json={"spec": {"name": 42}})
    assert_error(response, 400, "invalid_argument", "name")
    response = http.post("/v2/apps", json={"spec": ["not", "an", "object"]})
    assert_error(response, 400, "invalid_argument")
    assert app_count(http) == before


def test_a_10_mb_body_is_413_with_the_error_shape(http: httpx.Client) -> None:
    before = app_count(http)
    huge = json.dumps({"spec": {"name": "big", "padding": "x" * (10 * 1024 * 1024)}})
    response = http.post("/v2/apps", content=huge, headers={"content-type": "application/json"})
    assert_error(response, 413, "request_too_large", "too large")
    assert app_count(http) == before


def test_update_with_bad_input_leaves_the_app_unchanged(http: httpx.Client) -> None:
    name = unique_name()
    app = http.post("/v2/apps", json={"spec": service_spec(name)}).json()["app"]
    assert_error(http.put(f"/v2/apps/{app['id']}", content=b"{", headers={"content-type": "application/json"}),
                 400, "bad_request", "JSON")
    assert_error(http.put(f"/v2/apps/{app['id']}", json={"spec": service_spec(name), "update_all_source_versions": "y"}),
                 400, "bad_request", "update_all_source_versions", "boolean")
    assert_error(http.put(f"/v2/apps/{app['id']}", json={"spec": {"name": "UPPER"}}), 400, "invalid_argument", "name")
    after = http.get(f"/v2/apps/{app['id']}").json()["app"]
    assert (after["spec"], after["updated_at"]) == (app["spec"], app["updated_at"])
    assert http.get(f"/v2/apps/{app['id']}/deployments").json()["meta"]["total"] == 1


@pytest.mark.parametrize("app_id", [
    "00000000-0000-4000-8000-000000000000",  # unknown
    "not-a-uuid",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "' OR 1=1 --",
])
def test_unknown_and_malformed_ids_are_404(http: httpx.Client, app_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        body = {"spec": service_spec(unique_name())} if method == "PUT" else None
        response = http.request(method, f"/v2/apps/{app_id}", json=body)
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("per_page", ["0", "201", "abc", "-1", "1.5"])
def test_bad_per_page(http: httpx.Client, per_page: str) -> None:
    assert_error(http.get("/v2/apps", params={"per_page": per_page}), 400, "bad_request", "per_page")


def test_bad_page(http: httpx.Client) -> None:
    assert_error(http.get("/v2/apps", params={"page": "0"}), 400, "bad_request", "page")


def test_unknown_routes_and_methods_have_the_error_shape(http: httpx.Client) -> None:
    assert_error(http.get("/v2/nothing-here"), 404, "not_found")
    response = http.patch("/v2/apps")
    assert response.status_code == 405 and response.json()["id"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert http.patch("/v2/apps/00000000-0000-4000-8000-000000000000").headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert http.options("/v2/apps/regions").headers["allow"] == "GET, HEAD"  # not the {id} route's methods


def test_huge_pages_and_bad_booleans(http: httpx.Client) -> None:
    assert_error(http.get("/v2/apps", params={"page": str(2**62)}), 400, "bad_request", "page")
    assert_error(http.get("/v2/apps", params={"with_projects": "maybe"}), 400, "bad_request", "with_projects")
