"""What each destination receives, byte for byte (do-runtime-reference.md §4). No I/O.

- Papertrail: RFC 5424 lines, ``\\n``-terminated (RFC 6587 non-transparent framing), UTC ``Z`` times.
- Datadog: a JSON array of ``{message, ddsource, ddtags, hostname, service, ...}`` (logs intake v2).
- Logtail / Better Stack: a JSON array of events with ``dt`` and ``message``.
- OpenSearch: ``_bulk`` NDJSON, an ``index`` action before each document, every line ``\\n``-ended.
- A generic endpoint: a JSON array of the same documents OpenSearch gets.

What App Platform itself puts in each record is undocumented (§4); these carry the app, the
component, the deployment, the stage (BUILD, DEPLOY, RUN ...) and the line's own timestamp.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

from shoal.domain.forwarding import Record

SYSLOG_PRI = 14  # facility user (1) * 8 + severity informational (6)
DD_SOURCE = "shoal"
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


def _iso(record: Record, digits: int = 6) -> str:
    stamp = record.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return stamp[: len(stamp) - 6 + digits] + "Z"


def _header_field(value: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, bounded, ``-`` when empty."""
    return _NOT_PRINTUSASCII.sub("_", value)[:limit] or "-"


def syslog_line(record: Record) -> bytes:
    """``<14>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG\\n``: the app as the host, the component
    as the program, the deployment as the process and the stage as the message id."""
    message = record.message.replace("\r", " ").replace("\n", " ")
    header = (f"<{SYSLOG_PRI}>1 {_iso(record)} {_header_field(record.app_name, 255)} "
              f"{_header_field(record.component, 48)} {_header_field(record.deployment_id, 128)} "
              f"{_header_field(record.stage, 32)} - ")
    return header.encode() + message.encode() + b"\n"


def document(record: Record) -> dict[str, Any]:
    """The record as a JSON document (OpenSearch, generic endpoints)."""
    return {"@timestamp": _iso(record, 3), "message": record.message, "app": record.app_name,
            "app_id": record.app_id, "component": record.component, "deployment_id": record.deployment_id,
            "stage": record.stage}


def datadog_body(records: list[Record]) -> bytes:
    return json.dumps([{
        "message": r.message, "ddsource": DD_SOURCE, "service": r.component, "hostname": r.app_name,
        "ddtags": f"app:{r.app_name},component:{r.component},stage:{r.stage.lower()},deployment_id:{r.deployment_id}",
        "timestamp": _iso(r, 3), "status": "info"} for r in records], separators=(",", ":")).encode()


def logtail_body(records: list[Record]) -> bytes:
    return json.dumps([{"dt": _iso(r, 3), "message": r.message, "app": r.app_name, "app_id": r.app_id,
                        "component": r.component, "deployment_id": r.deployment_id, "stage": r.stage}
                       for r in records], separators=(",", ":")).encode()


def bulk_body(index: str, records: list[Record]) -> bytes:
    action = json.dumps({"index": {"_index": index}}, separators=(",", ":"))
    return "".join(f"{action}\n{json.dumps(document(r), separators=(',', ':'))}\n" for r in records).encode()


def generic_body(records: list[Record]) -> bytes:
    return json.dumps([document(r) for r in records], separators=(",", ":")).encode()
