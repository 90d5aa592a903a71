"""scripts/gen_compatibility.py, fed a tiny OpenAPI document and an in-memory route table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gen_compatibility.py"

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.0",
    "paths": {
        "/v2/account": {"get": {"operationId": "account_get", "summary": "Get User Information", "tags": ["Account"]}},
        "/v2/apps": {
            "get": {"operationId": "apps_list", "summary": "List All Apps", "tags": ["Apps"]},
            "post": {"operationId": "apps_create", "summary": "Create a New App", "tags": ["Apps"]},
        },
        "/v2/apps/{id}": {
            "parameters": [{"name": "id", "in": "path"}],
            "get": {"operationId": "apps_get", "summary": "Retrieve an Existing App", "tags": ["Apps"]},
            "delete": {"operationId": "apps_delete", "summary": "Delete an App", "tags": ["Apps"]},
        },
        "/v2/apps/{app_id}/deployments/{deployment_id}": {
            "get": {"operationId": "apps_get_deployment", "summary": "Retrieve | Deployment", "tags": ["Apps"]},
        },
        "/v2/apps/regions": {"get": {"operationId": "apps_list_regions", "summary": "List App Regions", "tags": ["Apps"]}},
    },
}

ROUTES = [
    ("GET", "/v2/account"),
    ("HEAD", "/v2/account"),
    ("GET", "/v2/apps"),
    ("GET", "/v2/apps/{app_id}"),  # named differently from the OpenAPI file's {id}
    ("get", "/v2/apps/{a}/deployments/{d:str}/"),
    ("GET", "/v2/apps/tiers"),  # deprecated, gone from the OpenAPI file
]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_compatibility", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def row(text: str, operation_id: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| `{operation_id}` |"))


def test_every_operation_listed_once(gen: ModuleType) -> None:
    operations = gen.read_operations(OPENAPI)
    assert [op.operation_id for op in operations] == [
        "account_get", "apps_list", "apps_create", "apps_get", "apps_delete", "apps_get_deployment", "apps_list_regions"
    ]  # fmt: skip
    text = gen.render(operations, ROUTES)
    for op in operations:
        assert text.count(f"| `{op.operation_id}` |") == 1


def test_marks_implemented_rows(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), ROUTES)
    assert row(text, "account_get") == "| `account_get` | GET | `/v2/account` | Get User Information | — | yes |"
    assert row(text, "apps_list").endswith("| yes |")
    assert row(text, "apps_get").endswith("| yes |")
    assert row(text, "apps_get_deployment").endswith("| yes |")
    assert row(text, "apps_create").endswith("| no |")
    assert row(text, "apps_delete").endswith("| no |")
    # /v2/apps/{app_id} must not swallow the literal segment of /v2/apps/regions.
    assert row(text, "apps_list_regions").endswith("| no |")


def test_summary_and_tags(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), ROUTES)
    assert "**4 of 7 operations implemented.**" in text.splitlines()[:4]
    assert "## Account (1 of 1)" in text
    assert "## Apps (3 of 6)" in text
    assert "Retrieve \\| Deployment" in text


def test_extra_routes_listed_without_head_twins(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), ROUTES)
    extras = text.split("## Routes shoal serves beyond the OpenAPI file", 1)[1]
    assert "| GET | `/v2/apps/tiers` |" not in extras  # a godo route: listed with those
    assert "HEAD" not in extras
    assert "/v2/account" not in extras


def test_no_extras(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), [])
    assert "**0 of 7 operations implemented.**" in text
    assert text.endswith("## Routes shoal serves beyond the OpenAPI file\n\nNone.\n")


def test_doctl_commands_and_godo_routes(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), ROUTES)
    assert "| `apps_list` | GET | `/v2/apps` | List All Apps | `apps create`, `apps list` | yes |" in text
    godo = text.split("## Routes godo calls that the OpenAPI file lacks", 1)[1]
    assert "| GET | `/v2/apps/tiers` | List tiers, deprecated (ListTiers) | `apps tier list` | yes |" in godo
    assert "| GET | `/v2/apps/buildpacks` |" in godo and godo.split("`/v2/apps/buildpacks`", 1)[1].split("\n")[0] \
        .endswith("| no |")
    commands = text.split("## doctl `apps` commands", 1)[1]
    assert "| `doctl apps list` | GET `/v2/apps` | yes |" in commands
    assert "| `doctl apps delete` | DELETE `/v2/apps/{id}` | no: DELETE `/v2/apps/{id}` |" in commands
    assert "| `doctl apps dev build` | none | not an API command:" in commands
    # a godo-only route is not also listed as shoal's own extra
    assert "/v2/apps/tiers`" not in text.split("## Routes shoal serves beyond the OpenAPI file", 1)[1]


def test_every_doctl_apps_command_has_a_row(gen: ModuleType) -> None:
    text = gen.render(gen.read_operations(OPENAPI), ROUTES)
    for name, _ in gen.DOCTL_APPS:
        assert text.count(f"| `doctl {name}` |") == 1


def test_check_mode(gen: ModuleType, tmp_path: Path) -> None:
    import yaml

    openapi = tmp_path / "openapi.yaml"
    openapi.write_text(yaml.safe_dump(OPENAPI))
    output = tmp_path / "COMPATIBILITY.md"
    args = ["--openapi", str(openapi), "--output", str(output)]
    assert gen.main([*args, "--check"], ROUTES) == 1  # missing
    assert gen.main(args, ROUTES) == 0
    assert gen.main([*args, "--check"], ROUTES) == 0
    output.write_text(output.read_text() + "edited\n")
    assert gen.main([*args, "--check"], ROUTES) == 1


def test_real_openapi_file_parses(gen: ModuleType) -> None:
    if not gen.DEFAULT_OPENAPI.exists():
        pytest.skip("shared reference OpenAPI file not present")
    import yaml

    operations = gen.read_operations(yaml.safe_load(gen.DEFAULT_OPENAPI.read_text()))
    ids = [op.operation_id for op in operations]
    assert len(ids) == len(set(ids)) >= 39
    assert {"apps_get", "apps_create", "apps_list"} <= set(ids)


def test_committed_compatibility_file_is_current() -> None:
    """COMPATIBILITY.md must be regenerated whenever routes change (CI runs this check)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    if not (root.parent / "shared" / "reference" / "do-apps-openapi.yaml").exists():
        pytest.skip("the shared reference OpenAPI file is not beside this checkout (CI has it)")
    done = subprocess.run([sys.executable, str(root / "scripts" / "gen_compatibility.py"), "--check"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
