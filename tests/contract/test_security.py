"""Tokens, scopes and account isolation, through pydo and raw HTTP."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from tests.conftest import error_body, service_spec, unique_name, wait_for
from tests.live import LiveServer, new_token_value


@pytest.mark.parametrize("header", [
    None,
    "",
    "Bearer",
    "Token {token}",
    "Basic {token}",
    "{token}",
    "Bearer dop_v1_short",
    "Bearer " + new_token_value(),  # well formed, unknown
])
def test_bad_credentials_are_401(server: LiveServer, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(token=server.token)}
    with server.http(anonymous=True) as http:
        response = http.get("/v2/apps", headers=headers)
    assert response.status_code == 401
    assert response.json()["id"] == "unauthorized" and "authenticate" in response.json()["message"]
    assert response.headers["ratelimit-limit"].isdigit()


def test_pydo_with_an_unknown_token_raises(server: LiveServer) -> None:
    with pytest.raises(ClientAuthenticationError):
        server.client(new_token_value()).apps.list()


def test_revoked_token_is_refused(server: LiveServer) -> None:
    token, token_id = server.issue_token(account=unique_name("acct"))
    client = server.client(token)
    assert client.apps.list()["meta"]["total"] == 0
    listing = server.shoal("token", "list").stdout
    assert token_id[:8] in listing and token not in listing  # values are never stored, so never listed
    server.shoal("token", "revoke", token_id)
    with server.http(token) as http:
        # The server re-checks a token at least once a second.
        response = wait_for(lambda: (r := http.get("/v2/apps")).status_code == 401 and r, timeout=10)
    assert "revoked" in response.json()["message"]


def test_expired_token_is_refused(server: LiveServer) -> None:
    token = server.create_token(account=unique_name("acct"), expires_in="1s")
    time.sleep(1.5)
    with server.http(token) as http:
        response = http.get("/v2/apps")
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_another_accounts_app_is_404_never_403(server: LiveServer) -> None:
    alice = server.client(server.create_token(account=unique_name("alice")))
    bob = server.client(server.create_token(account=unique_name("bob")))
    name = unique_name()
    app = alice.apps.create(body={"spec": service_spec(name)})["app"]
    assert bob.apps.get(app["id"])["id"] == "not_found"
    assert bob.apps.get("", name=name)["id"] == "not_found"
    assert bob.apps.update(app["id"], body={"spec": service_spec(name)})["id"] == "not_found"
    assert bob.apps.delete(app["id"])["id"] == "not_found"
    assert all(a["id"] != app["id"] for a in bob.apps.list(per_page=200)["apps"])
    # Names are unique per account, not globally.
    assert bob.apps.create(body={"spec": service_spec(name)})["app"]["id"] != app["id"]
    assert alice.apps.get(app["id"])["app"]["spec"]["name"] == name


def test_read_only_token_cannot_write(server: LiveServer) -> None:
    account = unique_name("acct")
    writer = server.client(server.create_token(account=account))
    reader = server.client(server.create_token("app:read", account=account), retry_total=0)
    app = writer.apps.create(body={"spec": service_spec(unique_name())})["app"]
    assert reader.apps.get(app["id"])["app"]["id"] == app["id"]
    assert reader.apps.list()["meta"]["total"] == 1
    for call in (lambda: reader.apps.update(app["id"], body={"spec": app["spec"]}),
                 lambda: reader.apps.delete(app["id"]),
                 lambda: reader.apps.create(body={"spec": service_spec(unique_name())})):
        with pytest.raises(HttpResponseError) as raised:
            call()
        assert raised.value.status_code == 403
        assert error_body(raised.value)["id"] == "forbidden"
        assert "scope" in error_body(raised.value)["message"]
    assert writer.apps.get(app["id"])["app"]["spec"] == app["spec"]


def test_scoped_tokens_get_exactly_their_scopes(server: LiveServer) -> None:
    account = unique_name("acct")
    creator = server.client(server.create_token("app:create", account=account), retry_total=0)
    app = creator.apps.create(body={"spec": service_spec(unique_name())})["app"]
    with pytest.raises(HttpResponseError) as raised:
        creator.apps.list()
    assert raised.value.status_code == 403
    deleter = server.client(server.create_token("app:delete", account=account), retry_total=0)
    assert deleter.apps.delete(app["id"]) == {"id": app["id"]}


def test_unknown_scope_is_refused_by_token_create(server: LiveServer) -> None:
    import subprocess

    with pytest.raises(subprocess.CalledProcessError) as raised:
        server.create_token("app:everything")
    assert "unknown scope" in raised.value.stderr
