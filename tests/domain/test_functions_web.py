"""OpenWhisk's web action contract: what a handler is given for a request, and what its result becomes."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType
from typing import Any

from shoal.domain.functions.model import Action, WebMode
from shoal.domain.functions.web import (NOT_ALLOWED, WebAnswer, WebRequest, activation_input, cors_headers,
                                        parse_target, result_answer)

ACTION = Action(package="sample", name="hello", runtime="python:3.11", path="packages/sample/hello.py",
                is_directory=False, parameters=MappingProxyType({"bound": "yes"}))
RAW = Action(package="sample", name="raw", runtime="python:3.11", path="packages/sample/raw.py", is_directory=False,
             web=WebMode.RAW)


def given(action: Action, method: str = "GET", query: str = "", body: bytes = b"",
          content_type: str | None = None) -> dict[str, Any]:
    headers = (("Host", "app.local"), ("X-Forwarded-For", "10.0.0.1")) + (
        (("Content-Type", content_type),) if content_type else ())
    found = activation_input(action, WebRequest(method, "/rest/of/path", query, headers, body), "a" * 32)
    assert isinstance(found, dict), found
    return found


def test_targets_name_package_action_extension_and_the_rest() -> None:
    assert parse_target("/sample/hello") == parse_target("/sample/hello.http")
    found = parse_target("/sample/hello.json/a/b")
    assert found is not None and (found.package, found.name, found.extension, found.rest) == (
        "sample", "hello", ".json", "/a/b")
    assert parse_target("/default/solo.text").name == "solo"  # type: ignore[union-attr]
    assert parse_target("/sample") is None and parse_target("/") is None


def test_query_and_json_body_are_merged_over_the_bound_parameters() -> None:
    found = given(ACTION, "POST", "name=query&x=1", json.dumps({"name": "body", "n": 2}).encode(), "application/json")
    assert found["name"] == "body" and found["x"] == "1" and found["n"] == 2 and found["bound"] == "yes"
    assert found["__ow_method"] == "post" and found["__ow_path"] == "/rest/of/path"
    assert found["__ow_headers"] == {"host": "app.local", "x-forwarded-for": "10.0.0.1",
                                     "content-type": "application/json"}
    assert "__ow_body" not in found and "__ow_query" not in found


def test_forms_are_fields_other_bodies_are_ow_body() -> None:
    assert given(ACTION, "POST", body=b"name=Ann&x=", content_type="application/x-www-form-urlencoded")["name"] == "Ann"
    assert given(ACTION, "POST", body=b"plain words", content_type="text/plain")["__ow_body"] == "plain words"
    assert given(ACTION, "POST", body=b"\x00\x01", content_type="image/png")["__ow_body"] == "AAE="
    # A JSON body that is not an object is not merged; OpenWhisk hands it over as the parsed value.
    assert given(ACTION, "POST", body=b"[1, 2]", content_type="application/json")["__ow_body"] == [1, 2]


def test_a_request_may_not_set_bound_or_reserved_parameters() -> None:
    for query, body in (("bound=no", b""), ("", b'{"__ow_method": "x"}')):
        answer = activation_input(ACTION, WebRequest("POST", "", query, (("content-type", "application/json"),), body),
                                  "b" * 32)
        assert isinstance(answer, WebAnswer) and answer.status == 400
        assert json.loads(answer.body) == {"code": "b" * 32, "error": NOT_ALLOWED}
    malformed = activation_input(ACTION, WebRequest("POST", "", "", (("content-type", "application/json"),), b"{"),
                                 "c" * 32)
    assert isinstance(malformed, WebAnswer) and malformed.status == 400


def test_raw_actions_get_the_query_string_and_the_body_as_is() -> None:
    found = given(RAW, "POST", "a=1&a=2", b'{"k": 1}', "application/json")
    assert found["__ow_query"] == "a=1&a=2" and "a" not in found
    assert base64.b64decode(found["__ow_body"]) == b'{"k": 1}'  # JSON counts as binary in raw mode
    assert given(RAW, "POST", body=b"hi", content_type="text/plain")["__ow_body"] == "hi"
    assert given(RAW)["__ow_body"] == ""


def answer(result: Any, extension: str = ".http", error: bool = False) -> WebAnswer:
    return result_answer(result, extension, "d" * 32, application_error=error)


def headers(found: WebAnswer) -> dict[str, str]:
    return dict(found.headers)


def test_results_become_responses() -> None:
    hello = answer({"body": "Hello stranger!"})
    assert (hello.status, hello.body) == (200, b"Hello stranger!")
    assert headers(hello) == {"content-type": "text/html; charset=UTF-8", "x-openwhisk-activation-id": "d" * 32}
    created = answer({"statusCode": "201", "headers": {"Location": "/x", "X-Many": [1, True]}, "body": {"id": 1}})
    assert created.status == 201 and created.body == b'{"id":1}'
    assert ("Location", "/x") in created.headers and ("X-Many", "1") in created.headers
    assert ("X-Many", "true") in created.headers and headers(created)["content-type"] == "application/json"
    png = answer({"headers": {"content-type": "image/png"}, "body": base64.b64encode(b"\x89PNG").decode()})
    assert png.body == b"\x89PNG" and headers(png)["content-type"] == "image/png"
    assert answer({}).status == 204 and answer({"statusCode": 302, "headers": {"location": "/y"}}).status == 302
    assert answer({"body": "", "headers": {"content-type": "text/plain"}}).status == 204


def test_invalid_results_are_openwhisks_400() -> None:
    bad: Any
    for bad in ({"statusCode": "abc"}, {"statusCode": 1000}, {"headers": "x"}, {"headers": {"a": {"b": 1}}}, []):
        found = answer(bad)
        assert found.status == 400, bad
        assert json.loads(found.body)["error"] == "Response is not valid 'message/http'."
    mismatch = answer({"headers": {"content-type": "text/plain"}, "body": {"not": "text"}})
    assert json.loads(mismatch.body)["error"] == "Response type in header did not match generated content type."
    undecodable = answer({"headers": {"content-type": "image/png"}, "body": "not base64!"})
    assert undecodable.status == 400


def test_an_application_error_projects_its_error_value() -> None:
    teapot = answer({"error": {"statusCode": 418, "body": "short and stout"}}, error=True)
    assert (teapot.status, teapot.body) == (418, b"short and stout")
    assert answer({"error": "just a string"}, error=True).status == 400


def test_extensions_choose_the_projection() -> None:
    assert answer({"a": 1}, ".json").body == b'{"a": 1}'
    assert answer({"body": "<p>x</p>"}, ".html").body == b"<p>x</p>"
    assert answer({"text": "plain"}, ".text").body == b"plain"
    assert answer({"nothing": 1}, ".text").status == 404
    assert answer("string", ".json").status == 400


def test_default_cors_echoes_requested_headers() -> None:
    assert dict(cors_headers({}))["access-control-allow-origin"] == "*"
    assert dict(cors_headers({"access-control-request-headers": "X-A"}))["access-control-allow-headers"] == "X-A"
