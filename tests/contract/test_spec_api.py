"""The spec corpus through the live API: propose (``validate_app_spec``) accepts every valid spec
with the same normalised result ``shoal.spec.check`` gives, and refuses every invalid one with a
400 ``invalid_argument`` whose message names every expected field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from shoal import spec
from tests.conftest import error_body
from tests.spec.spec_corpus import InvalidCase, invalid_cases, valid_files


@pytest.mark.parametrize("path", valid_files(), ids=lambda p: p.name)
def test_propose_accepts_valid_specs_and_returns_them_normalised(client: Any, path: Path) -> None:
    raw = spec.load_text(path.read_text())
    proposal = client.apps.validate_app_spec(body={"spec": raw})
    expected = spec.check(raw)
    # Secrets may come back encrypted, so compare everything else and only the keys of secrets.
    assert _without_secret_values(proposal["spec"]) == _without_secret_values(expected)
    # Registry credentials are sealed like secrets: back as EV[...], never in plaintext.
    for kind in ("services", "workers", "jobs"):
        for component in proposal["spec"].get(kind) or []:
            credentials = (component.get("image") or {}).get("registry_credentials")
            assert credentials is None or credentials.startswith("EV[1:")
    assert float(proposal["app_cost"]) == pytest.approx(spec.app_cost(expected))


@pytest.mark.parametrize("case", [c for c in invalid_cases() if isinstance(c.spec, dict)], ids=lambda c: c.name)
def test_propose_refuses_invalid_specs_naming_every_path(client: Any, case: InvalidCase) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.apps.validate_app_spec(body={"spec": case.spec})
    assert raised.value.status_code == 400
    body = error_body(raised.value)
    assert body["id"] == "invalid_argument"
    assert body["message"].startswith("error validating app spec")
    for path, fragment in case.problems:
        assert path in body["message"], f"{path} missing from {body['message']}"
        assert fragment in body["message"], f"{fragment!r} missing from {body['message']}"


def _without_secret_values(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("type") == "SECRET":
            return {k: v for k, v in value.items() if k != "value"}
        return {k: _without_secret_values(v) for k, v in value.items() if k != "registry_credentials"}
    if isinstance(value, list):
        return [_without_secret_values(v) for v in value]
    return value
