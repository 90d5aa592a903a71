"""Schemathesis run of DigitalOcean's Apps OpenAPI document against one live ``shoal serve``.

Only the operations shoal implements (``shoal.api.route_table.route_table()``, path templates compared with every
``{...}`` segment treated as equal) are exercised.  Each gets a property-based run (the document's examples, the
coverage phase's boundary/negative cases, then Hypothesis fuzzing, positive and negative data), and every response is
checked for:

* ``not_a_server_error``: no 5xx, ever;
* ``status_code_conformance``: the status is one the document lists for the operation;
* ``content_type_conformance``: the response's media type is one documented for that status;
* ``response_schema_conformance``: the JSON body validates against the documented schema for that status;
* ``response_headers_conformance``: documented response headers (``ratelimit-*``) are present and well-typed;
* ``negative_data_rejection``: a request that violates the document (a non-boolean ``with_projects``, a negative
  ``per_page``, a body of the wrong type...) is refused with a 4xx, not served;
* ``unsupported_method`` / ``allow_header_conformance``: a method the path does not have gets 405 with an ``Allow``
  header naming exactly the methods the document gives the path (RFC 9110 section 15.5.6).

About status codes: every DigitalOcean operation documents a ``default`` response (the ``error`` object: ``id``,
``message``, ``request_id``), so the 400/404/409/413/422 answers DO's real API gives are *documented* here and
``status_code_conformance`` accepts them; what it and ``response_schema_conformance`` enforce is that they carry
DO's error shape.  Schema-valid requests that shoal (like DO) refuses on semantic grounds -- a spec that fails app
spec validation, a rollback without ``deployment_id`` -- are therefore fine, which is why ``positive_data_acceptance``
is deliberately not run: the document's schemas cannot express DO's app spec rules.

Most generated ids name nothing, so to reach the 200 paths too, three quarters of the schema-valid cases for an
operation under ``/v2/apps/{id}`` are pointed at a seeded app (and its deployment, event and component).

A short stateful run follows, driven by the ``links`` the document declares (``GET /v2/apps`` and ``POST /v2/apps``
feed ``GET``/``PUT``/``DELETE /v2/apps/{id}``), adding ``use_after_free`` and ``ensure_resource_availability``.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from shoal.api.route_table import route_table
from tests.conftest import service_spec
from tests.live import LiveServer

REPO_ROOT = Path(__file__).resolve().parents[2]  # the parent of tests/
SPEC_PATH = REPO_ROOT.parent / "shared" / "reference" / "do-apps-openapi.yaml"  # shared/ sits beside the repo

MAX_EXAMPLES = 20  # fuzzing examples per operation (the examples and coverage phases add their own cases)
APP_SPEC_EXAMPLES = 12  # fewer for the three operations taking a whole AppSpec: each example is big and slow
SEED = 20240611

if not SPEC_PATH.exists():  # pragma: no cover - the reference lives outside the repo
    pytest.skip(f"DigitalOcean OpenAPI document not found at {SPEC_PATH}", allow_module_level=True)

_PARAM = re.compile(r"\{[^/{}]*\}")


def _shape(path: str) -> str:
    """A path template with every ``{...}`` segment made equal: ``/v2/apps/{id}`` matches ``/v2/apps/{app_id}``."""
    return _PARAM.sub("{}", path.rstrip("/") or "/")


IMPLEMENTED = {(method.upper(), _shape(path)) for method, path in route_table()}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _implemented_subset(document: dict[str, Any]) -> dict[str, Any]:
    """The document with only the operations shoal routes.

    Filtering the raw document (rather than ``schema.include(...)``) keeps the selection independent of how
    schemathesis combines include filters with per-operation config entries.
    """
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        kept = {key: value for key, value in item.items()
                if key not in HTTP_METHODS or (key.upper(), _shape(path)) in IMPLEMENTED}
        if HTTP_METHODS & set(kept):
            paths[path] = kept
    return {**document, "paths": paths}


# Operations whose body is a whole ``AppSpec``: the coverage phase enumerates boundary values of every field of that
# (very large) schema -- thousands of requests each, minutes of run time -- so they get examples + fuzzing only.
# Most generated specs are (rightly) refused with 400 invalid_argument, which the ``default`` response documents.
APP_SPEC_BODIES = ["POST /v2/apps", "PUT /v2/apps/{id}", "POST /v2/apps/propose"]

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "suppress-health-check": ["too_slow", "filter_too_much"],
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    # ``stateful`` must stay enabled for ``as_state_machine()`` to pick up the document's links.
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": True}},
    "operations": [{"include-name": APP_SPEC_BODIES, "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": APP_SPEC_EXAMPLES}}],
})


class _StringDatesLoader(yaml.SafeLoader):
    """YAML as JSON sees it: ``2021-02-10`` stays a string (schemathesis JSON-encodes the document's examples)."""


_StringDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

DOCUMENT = yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=_StringDatesLoader)  # noqa: S506 - a SafeLoader
schema = schemathesis.openapi.from_dict(_implemented_subset(DOCUMENT), config=CONFIG)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]
# The stateful run also invents query parameters the document does not name; DigitalOcean's API
# ignores unknown query parameters and clients rely on it (godo sends ``tail_lines`` and
# ``component_name`` where the document has neither), so shoal ignores them too and
# ``negative_data_rejection`` is left to the per-operation run, which keeps to named parameters.
STATEFUL_CHECKS = [c for c in CHECKS if c is not negative_data_rejection] + [use_after_free,
                                                                              ensure_resource_availability]

# Checks switched off for one operation (label -> checks), each with the reason.  None is needed today: every operation
# documents a ``default`` response carrying DO's error object, so no 4xx shoal gives is "undocumented"; add entries
# here only for a rule the DigitalOcean document itself gets wrong.
EXCLUDED_CHECKS: dict[str, list[Any]] = {}

HYPOTHESIS = settings(deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Live:
    """The server under test plus the ids of a seeded app, so generated cases can reach real resources."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.kwargs: dict[str, Any] = {"base_url": server.url, "headers": {"Authorization": f"Bearer {server.token}"},
                       "verify": server.ca, "timeout": 30}
        self.ids: dict[str, str] = {}
        self.spare_id = ""

    def seed(self) -> None:
        with self.server.http() as http:
            spare, app = (http.post("/v2/apps", json={"spec": service_spec(name)}) for name in ("st-spare", "st-seed"))
            assert spare.status_code == app.status_code == 200, (spare.text, app.text)
            app_id = app.json()["app"]["id"]
            deadline = time.monotonic() + 30
            while True:
                deployments = http.get(f"/v2/apps/{app_id}/deployments").json()["deployments"]
                if deployments and deployments[0]["phase"] not in ("PENDING_BUILD", "BUILDING", "PENDING_DEPLOY",
                                                                   "DEPLOYING"):
                    break
                assert time.monotonic() < deadline, deployments
                time.sleep(0.2)
            events = http.get(f"/v2/apps/{app_id}/events").json().get("events") or []
        self.ids = {"id": app_id, "app_id": app_id, "deployment_id": deployments[0]["id"], "component_name": "web"}
        if events:
            self.ids["event_id"] = events[0]["id"]
        self.spare_id = spare.json()["app"]["id"]

    def aim(self, case: schemathesis.Case[Any]) -> None:
        """Point three quarters of the schema-valid cases for one app's sub-resources at the seeded app."""
        params = case.path_parameters
        if (not params or case.meta is None or not case.meta.generation.mode.is_positive
                or not ({"id", "app_id"} & set(params)) or case.method.upper() == "DELETE"):
            return  # DELETE keeps its random ids: deleting the seeded app would starve every later operation
        if zlib.crc32(json.dumps([case.operation.label, params, case.query], sort_keys=True,
                                 default=str).encode()) % 4 == 0:
            return  # a quarter keep their generated ids (mostly 404s: the error shape is checked on those)
        for name in params:
            if name in self.ids:
                params[name] = self.ids[name]
        if case.operation.label == "PUT /v2/apps/{id}":
            params["id"] = self.spare_id  # an accepted update may drop component ``web``: keep the seeded app intact


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server for the whole module, with rate limits high enough never to answer 429."""
    server = LiveServer(data_dir=tmp_path_factory.mktemp("shoal-schemathesis") / "data",
                        extra_args=["--rate-limit-per-minute", "1000000", "--rate-limit-per-hour", "1000000"])
    server.start()
    try:
        state = Live(server)
        state.seed()
        yield state
    finally:
        server.stop()


def test_implemented_operations_are_in_the_document() -> None:
    """The subset must hold the implemented operations, or the run below would silently test nothing."""
    selected = {(op.method.upper(), _shape(op.path)) for op in (r.ok() for r in schema.get_all_operations())}  # type: ignore[union-attr]
    assert len(selected) >= 10, sorted(selected)
    assert ("POST", "/v2/apps") in selected and ("GET", "/v2/apps/{}") in selected, sorted(selected)
    assert selected <= IMPLEMENTED


@schema.parametrize()
@HYPOTHESIS
def test_api(case: schemathesis.Case[Any], live: Live) -> None:
    live.aim(case)
    case.call_and_validate(**live.kwargs, checks=CHECKS, excluded_checks=EXCLUDED_CHECKS.get(case.operation.label))


APIWorkflow = schema.as_state_machine()


def test_stateful(live: Live) -> None:
    class Workflow(APIWorkflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return dict(live.kwargs)

        def validate_response(self, response: Any, case: schemathesis.Case[Any], additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs, recorder=self.recorder)

    Workflow.run(settings=settings(HYPOTHESIS, max_examples=15, stateful_step_count=8))
