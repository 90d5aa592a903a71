"""Log forwarding as values: destinations read from a spec, Papertrail addresses, each wire format,
and the outbox's bound."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from datetime import UTC, datetime

import pytest

from shoal.domain.forwarding import MAX_MESSAGE_BYTES, Destination, Record, clipped, syslog_address
from shoal.domain.forwarding import destinations as plan_destinations
from shoal.domain.plan import make_plan
from shoal.observability import wire
from shoal.observability.outbox import Backoff, Outbox
from shoal.spec import SpecInvalid, check

APP = "00000000-0000-4000-8000-000000000001"


def destinations(app_id: str, spec: Mapping[str, Any]) -> dict[str, list[Destination]]:
    return plan_destinations(make_plan(spec, app_id=app_id, deployment_id="dep-1"))


def _record(message: str = "hello", deployment: str = "dep-1", stage: str = "RUN") -> Record:
    return Record(APP, "shop", deployment, "web", stage, datetime(2026, 3, 1, 12, 0, 1, 234567, tzinfo=UTC), message)


def test_each_component_gets_its_own_destinations_of_every_kind() -> None:
    spec = {"name": "shop", "services": [{"name": "web", "log_destinations": [
        {"name": "pt", "papertrail": {"endpoint": "logs.example.com:12345"}},
        {"name": "dd", "datadog": {"api_key": "dd-key-123"}},
        {"name": "lt", "logtail": {"token": "t"}},
        {"name": "os", "open_search": {"endpoint": "https://os:9200", "basic_auth": {"user": "u", "password": "pw-456"},
                                       "index_name": "shop"}},
        {"name": "cl", "open_search": {"cluster_name": "logs"}},
    ]}], "workers": [{"name": "quiet"}]}
    found = destinations(APP, spec)
    assert list(found) == ["web"]
    pt, dd, lt, os_, cl = found["web"]
    assert (pt.kind, pt.endpoint) == ("papertrail", "logs.example.com:12345")
    assert (dd.kind, dd.api_key, dd.endpoint) == ("datadog", "dd-key-123", "")
    assert (lt.kind, lt.token) == ("logtail", "t")
    assert (os_.user, os_.password, os_.index) == ("u", "pw-456", "shop")
    assert (cl.cluster_name, cl.index, cl.endpoint) == ("logs", "logs", "")
    assert "dd-key-123" not in repr(dd) and "pw-456" not in repr(os_)  # credentials stay out of logs and reprs


def test_generic_fields_are_read_whether_or_not_the_models_have_them() -> None:
    spec = {"name": "shop", "services": [{"name": "web", "log_destinations": [
        {"name": "hook", "endpoint": "https://collector:8443/in", "tls_insecure": True,
         "headers": [{"key": "X-Token", "value": "s3"}]},
        {"name": "dd", "datadog": {"api_key": "k"}, "headers": [{"key": "X-Extra", "value": "1"}]},
    ]}]}
    hook, dd = destinations(APP, spec)["web"]
    assert (hook.kind, hook.endpoint, hook.tls_insecure, hook.headers) == (
        "endpoint", "https://collector:8443/in", True, (("X-Token", "s3"),))
    assert dd.kind == "datadog" and dd.headers == (("X-Extra", "1"),) and not dd.tls_insecure


def test_equal_destinations_are_one_queue_across_deployments() -> None:
    spec = {"name": "shop", "services": [{"name": "web", "log_destinations": [
        {"name": "dd", "datadog": {"api_key": "k"}}]}]}
    assert destinations(APP, spec) == destinations(APP, json.loads(json.dumps(spec)))
    assert len({destinations(APP, spec)["web"][0], destinations(APP, spec)["web"][0]}) == 1


@pytest.mark.parametrize("endpoint", ["logs.example.com:12345", "syslog+tls://logs.example.com:12345",
                                      "https://logs.example.com:12345", "syslog+tls://logs.example.com:12345/"])
def test_papertrail_endpoints_in_every_form_mean_that_host_and_port(endpoint: str) -> None:
    assert syslog_address(endpoint) == ("logs.example.com", 12345)


@pytest.mark.parametrize("endpoint", ["https://mypapertrailendpoint.com", "logs.example.com", "host:notaport"])
def test_a_papertrail_endpoint_without_a_port_is_refused_with_the_form_it_needs(endpoint: str) -> None:
    with pytest.raises(ValueError, match="host and port"):
        syslog_address(endpoint)


def test_the_spec_accepts_host_port_for_papertrail_only() -> None:
    def problems(kind: str, endpoint: str) -> list[str]:
        config = {"endpoint": endpoint, **({"api_key": "k"} if kind == "datadog" else {})}
        spec = {"name": "shop", "services": [{"name": "web", "git": {"repo_clone_url": "https://x/y.git"},
                                              "log_destinations": [{"name": "dest", kind: config}]}]}
        try:
            check(spec)
        except SpecInvalid as invalid:
            return [p.path for p in invalid.problems]
        return []

    assert problems("papertrail", "logs.example.com:12345") == []
    assert problems("papertrail", "syslog+tls://logs.example.com:12345") == []
    assert problems("papertrail", "logs example") == ["services[0].log_destinations[0].papertrail.endpoint"]
    assert problems("datadog", "intake.example.com:443") == ["services[0].log_destinations[0].datadog.endpoint"]


def test_messages_are_clipped_to_2048_bytes_on_a_character_boundary() -> None:
    assert clipped("short") == "short"
    long = "é" * 2000  # two bytes each
    assert len(clipped(long).encode()) <= MAX_MESSAGE_BYTES and clipped(long) == "é" * 1024


def test_syslog_lines_are_rfc5424_with_a_utc_z_time_and_one_line_each() -> None:
    line = wire.syslog_line(_record("multi\nline message ünïcode", stage="BUILD")).decode()
    assert line.endswith("\n") and line.count("\n") == 1
    match = re.fullmatch(r"<14>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)\n", line)
    assert match is not None, line
    stamp, host, program, procid, msgid, message = match.groups()
    assert stamp == "2026-03-01T12:00:01.234567Z"
    assert (host, program, procid, msgid) == ("shop", "web", "dep-1", "BUILD")
    assert message == "multi line message ünïcode"


def test_syslog_header_fields_are_printable_ascii_and_bounded() -> None:
    record = Record(APP, "my app", "d", "x" * 100, "RUN", datetime(2026, 1, 1, tzinfo=UTC), "m")
    fields = wire.syslog_line(record).decode().split(" ")
    assert fields[2] == "my_app" and fields[3] == "x" * 48


def test_datadog_gets_a_json_array_with_its_reserved_attributes() -> None:
    body = json.loads(wire.datadog_body([_record("a"), _record("b")]))
    assert [e["message"] for e in body] == ["a", "b"]
    assert body[0]["ddsource"] == "shoal" and body[0]["service"] == "web" and body[0]["hostname"] == "shop"
    assert body[0]["ddtags"] == "app:shop,component:web,stage:run,deployment_id:dep-1"


def test_logtail_gets_events_with_dt_and_message() -> None:
    (event,) = json.loads(wire.logtail_body([_record("a")]))
    assert event["dt"] == "2026-03-01T12:00:01.234Z" and event["message"] == "a" and event["component"] == "web"


def test_bulk_bodies_pair_an_index_action_with_each_document_and_end_every_line() -> None:
    body = wire.bulk_body("shop-logs", [_record("a"), _record("b")]).decode()
    assert body.endswith("\n")
    lines = body.split("\n")[:-1]
    assert [json.loads(x) for x in lines[::2]] == [{"index": {"_index": "shop-logs"}}] * 2
    assert [json.loads(x)["message"] for x in lines[1::2]] == ["a", "b"]
    assert json.loads(lines[1])["@timestamp"] == "2026-03-01T12:00:01.234Z"


def test_the_outbox_keeps_its_bound_by_dropping_the_oldest_and_counts_them_per_deployment() -> None:
    box = Outbox(limit=3)
    box.put([_record(str(i), deployment="old") for i in range(2)])
    box.put([_record(str(i), deployment="new") for i in range(2, 5)])
    assert len(box) == 3 and [r.message for r in box.take(10)] == ["2", "3", "4"]
    assert box.take_dropped() == [("old", 2, "lines came faster than the destination took them (at most 3 wait)")]
    assert box.take_dropped() == []


def test_a_failed_batch_goes_back_to_the_front_and_the_reason_names_the_failure() -> None:
    box = Outbox(limit=4)
    box.put([_record(str(i)) for i in range(4)])
    batch = box.take(2)
    box.put([_record("4"), _record("5")])
    box.give_back(batch, "connection refused")
    assert [r.message for r in box.take(10)] == ["2", "3", "4", "5"]
    ((dep, count, why),) = box.take_dropped()
    assert (dep, count) == ("dep-1", 2) and "connection refused" in why and "at most 4" in why


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=1, cap=4)
    delays = [backoff.next() for _ in range(5)]
    assert all(0.8 * cap <= d <= cap for d, cap in zip(delays, [1, 2, 4, 4, 4], strict=True)), delays
    backoff.reset()
    assert backoff.next() <= 1


def test_destination_labels_name_kind_name_and_component() -> None:
    assert Destination(APP, "web", "dd", "datadog").label == 'datadog destination "dd" of web'
