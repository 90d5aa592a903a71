"""The apps endpoints through pydo against a live server (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.conftest import error_body, service_spec, unique_name
from tests.live import LiveServer


def test_create_returns_the_app_with_its_server_fields(client: Any, server: LiveServer) -> None:
    name = unique_name()
    app = client.apps.create(body={"spec": service_spec(name)})["app"]
    assert re.fullmatch(r"[0-9a-f-]{36}", app["id"])
    assert app["spec"]["name"] == name
    assert app["owner_uuid"] == client.account.get()["account"]["uuid"]
    assert re.fullmatch(rf"http://{name}-[a-z0-9]{{5}}\.localhost:{server.ingress_port}", app["default_ingress"])
    assert app["region"]["slug"] == "nyc" and app["region"]["data_centers"] == ["nyc1", "nyc3"]
    assert app["tier_slug"] in ("basic", "professional")
    assert app["created_at"].endswith("Z") and app["updated_at"] == app["created_at"]
    assert re.fullmatch(r"[0-9a-f-]{36}", app["project_id"])


def test_get_by_id_and_by_name(client: Any) -> None:
    name = unique_name()
    created = client.apps.create(body={"spec": service_spec(name)})["app"]
    fetched = client.apps.get(created["id"])["app"]
    assert {k: fetched[k] for k in ("id", "spec", "created_at", "default_ingress")} == \
        {k: created[k] for k in ("id", "spec", "created_at", "default_ingress")}
    # pydo's by-name form sends an empty id: GET /v2/apps/?name=NAME
    assert client.apps.get("", name=name)["app"]["id"] == created["id"]
    assert client.apps.get("-", name=name)["app"]["id"] == created["id"]


def test_unknown_app_is_a_well_formed_404(client: Any) -> None:
    # pydo returns 404 bodies of apps.get as results instead of raising (do-app-platform.md §0.3)
    body = client.apps.get("00000000-0000-4000-8000-000000000000")
    assert body["id"] == "not_found" and body["message"] and body["request_id"]
    assert client.apps.get("", name=unique_name("missing"))["id"] == "not_found"


def test_update_changes_the_spec_seen_by_the_next_get(client: Any) -> None:
    name = unique_name()
    app = client.apps.create(body={"spec": service_spec(name)})["app"]
    spec = service_spec(name, run_command="python app.py")
    spec["region"] = "ams"
    updated = client.apps.update(app["id"], body={"spec": spec})["app"]
    assert updated["spec"]["services"][0]["run_command"] == "python app.py"
    again = client.apps.get(app["id"])["app"]
    assert again["spec"]["services"][0]["run_command"] == "python app.py"
    assert again["region"]["slug"] == "ams"
    assert again["created_at"] == app["created_at"]
    assert again["default_ingress"] == app["default_ingress"]


def test_duplicate_name_is_409_and_creates_nothing(client: Any) -> None:
    name = unique_name()
    client.apps.create(body={"spec": service_spec(name)})
    with pytest.raises(HttpResponseError) as raised:
        client.apps.create(body={"spec": service_spec(name)})
    assert raised.value.status_code == 409
    assert error_body(raised.value)["id"] == "conflict"
    assert name in error_body(raised.value)["message"]
    total = client.apps.list(per_page=200)["meta"]["total"]
    names = [a["spec"]["name"] for page in range(1, total // 200 + 2)
             for a in client.apps.list(page=page, per_page=200)["apps"]]
    assert names.count(name) == 1


def test_delete_answers_with_the_id_then_the_app_is_gone(client: Any) -> None:
    app = client.apps.create(body={"spec": service_spec(unique_name())})["app"]
    assert client.apps.delete(app["id"]) == {"id": app["id"]}
    assert client.apps.get(app["id"])["id"] == "not_found"
    assert client.apps.delete(app["id"])["id"] == "not_found"


def test_list_paginates_with_links_and_total(server: LiveServer) -> None:
    # A fresh account, so the listing holds exactly the apps made here.
    client = server.client(server.create_token(account=unique_name("acct")))
    names = [unique_name(f"p{i}") for i in range(5)]
    for name in names:
        client.apps.create(body={"spec": service_spec(name)})
    first = client.apps.list(page=1, per_page=2)
    assert first["meta"]["total"] == 5
    assert [a["spec"]["name"] for a in first["apps"]] == names[:2]
    pages = first["links"]["pages"]
    assert set(pages) == {"next", "last"} and "page=3" in pages["last"] and "per_page=2" in pages["next"]
    assert pages["next"].startswith(server.url)
    middle = client.apps.list(page=2, per_page=2)
    assert [a["spec"]["name"] for a in middle["apps"]] == names[2:4]
    assert set(middle["links"]["pages"]) == {"first", "prev", "next", "last"}
    last = client.apps.list(page=3, per_page=2)
    assert [a["spec"]["name"] for a in last["apps"]] == names[4:]
    assert set(last["links"]["pages"]) == {"first", "prev"}
    assert client.apps.list(page=9, per_page=2)["apps"] == []
    single = client.apps.list(per_page=200)
    assert single["links"] == {"pages": {}} and len(single["apps"]) == 5
    assert "project_id" not in single["apps"][0]
    assert "project_id" in client.apps.list(with_projects=True)["apps"][0]


def test_propose_validates_and_prices_without_creating(server: LiveServer) -> None:
    client = server.client(server.create_token(account=unique_name("acct")))
    name = unique_name()
    proposal = client.apps.validate_app_spec(body={"spec": service_spec(name)})
    assert proposal["app_name_available"] is True and "app_name_suggestion" not in proposal
    assert proposal["spec"]["name"] == name
    assert isinstance(proposal["app_cost"], int)
    assert proposal["app_is_static"] is False
    assert client.apps.list()["meta"]["total"] == 0

    app = client.apps.create(body={"spec": service_spec(name)})["app"]
    taken = client.apps.validate_app_spec(body={"spec": service_spec(name)})
    assert taken["app_name_available"] is False and taken["app_name_suggestion"] == f"{name}-2"
    # As an update of the app that owns the name, the name is available.
    as_update = client.apps.validate_app_spec(body={"spec": service_spec(name), "app_id": app["id"]})
    assert as_update["app_name_available"] is True


def test_create_accepts_a_yaml_body_and_answers_yaml_when_asked(server: LiveServer) -> None:
    name = unique_name()
    body = f"spec:\n  name: {name}\n  services:\n  - name: web\n    git:\n      repo_clone_url: https://example.com/r.git\n"
    with server.http() as http:
        created = http.post("/v2/apps", content=body, headers={"content-type": "application/yaml"})
        assert created.status_code == 200, created.text
        app_id = created.json()["app"]["id"]
        as_yaml = http.get(f"/v2/apps/{app_id}", headers={"accept": "application/yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert f"name: {name}" in as_yaml.text and as_yaml.text.startswith("app:")
