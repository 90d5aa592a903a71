"""OpenWhisk's web action contract, both ways: an HTTP request as an action's input, its result as HTTP.

Pure, and written after OpenWhisk's controller (``WebActions.scala``) so that a handler sees what it
sees on DigitalOcean (reference §3.3):

* the target is ``/<package>/<action>[.<ext>][/<rest>]``; ``.http`` (the default), ``.json``,
  ``.html``, ``.text`` and ``.svg`` choose how the result becomes a response; ``<rest>`` is
  ``__ow_path``;
* a standard web action gets ``__ow_method`` (lower case), ``__ow_headers`` (lower-case names) and
  ``__ow_path``, the query parameters, and a JSON-object or form body merged over them; any other
  body arrives as ``__ow_body`` (text, or base64 for binary types and, as OpenWhisk still does for
  legacy reasons, for a JSON body that is not an object); the project's parameters are underneath
  and, because DigitalOcean deploys every function ``final``, a request naming one of them (or an
  ``__ow_`` key) is refused with 400;
* a raw web action (``web: raw``) gets ``__ow_query`` (the query string) and ``__ow_body`` instead;
* a result's ``statusCode``, ``headers`` and ``body`` drive the response: a string body is sent as it
  is (``text/html`` unless a header says otherwise) or base64-decoded for a binary type; an object or
  array body is JSON; no body is 204;
* what goes wrong is answered as OpenWhisk answers: ``{"error": ..., "code": <activation id>}``, 400
  for a result that is not a valid response and for a failed activation (timeout, crash, memory),
  404 for an action that does not exist or is not a web action, 401 for a ``webSecure`` secret not
  given; every response carries ``x-openwhisk-activation-id``;
* unless an action takes ``web-custom-options``, the answer carries OpenWhisk's permissive CORS
  headers and OPTIONS is answered without running it (``default_cors``: the functions gateway turns
  this off when the component has a CORS policy of its own, which the ingress then applies).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from shoal.domain.functions.model import Action, WebMode

EXTENSIONS = (".http", ".json", ".html", ".text", ".svg")
RESERVED = frozenset({"__ow_method", "__ow_headers", "__ow_path", "__ow_user", "__ow_query", "__ow_body"})
MAX_REQUEST_BYTES = 1024 * 1024  # input parameters ≤ 1 MB (reference §3.2)
ACTIVATION_HEADER = "x-openwhisk-activation-id"
CORS_METHODS = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
CORS_HEADERS = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"

NOT_FOUND = "The requested resource does not exist."
UNAUTHORIZED = "The resource requires authentication, which was not supplied with the request"
NOT_ALLOWED = "Request defines parameters that are not allowed (e.g., reserved properties)."
ERROR_PROCESSING = "There was an error processing your request."
CONTENT_TYPE_ERROR = "Response type in header did not match generated content type."
UNKNOWN_CONTENT_TYPE = "Response did not specify a known content-type."
PROPERTY_NOT_FOUND = "Response does not include requested property."
MALFORMED = "The request content was malformed."
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
_TEXT_APPLICATION = frozenset({"application/json", "application/xml", "application/javascript",
                               "application/x-www-form-urlencoded", "application/ecmascript"})


@dataclass(frozen=True)
class Target:
    package: str
    name: str
    extension: str  # one of EXTENSIONS
    rest: str  # __ow_path: what follows the action in the path ("" or "/...")


@dataclass(frozen=True)
class WebRequest:
    method: str  # as sent (GET, POST, ...)
    path: str  # __ow_path
    query: str  # the raw query string, without "?"
    headers: tuple[tuple[str, str], ...]  # names as sent; lower-cased where the contract says so
    body: bytes = b""


@dataclass(frozen=True)
class WebAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def with_headers(self, extra: tuple[tuple[str, str], ...]) -> WebAnswer:
        """``extra`` added where the answer does not set the same header itself."""
        present = {name.lower() for name, _ in self.headers}
        return WebAnswer(self.status, self.headers + tuple(h for h in extra if h[0].lower() not in present),
                         self.body)


def parse_target(path: str) -> Target | None:
    """``/<package>/<action>[.ext][/rest]`` of a request path (already without the route prefix)."""
    parts = path.lstrip("/").split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    package, name = unquote(parts[0]), unquote(parts[1])
    extension = next((e for e in EXTENSIONS if name.endswith(e) and len(name) > len(e)), ".http")
    if name.endswith(extension):
        name = name[: -len(extension)]
    rest = "/" + parts[2] if len(parts) == 3 else ""
    return Target(package, name, extension, rest)


def error_answer(status: int, message: str, activation_id: str) -> WebAnswer:
    """OpenWhisk's error body, pretty-printed as its controller does."""
    body = json.dumps({"code": activation_id, "error": message}, indent=2).encode()
    return WebAnswer(status, (("content-type", "application/json"), (ACTIVATION_HEADER, activation_id)), body)


def cors_headers(request_headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """OpenWhisk's default CORS answer: any origin, its methods, the headers asked for (or its list)."""
    asked = request_headers.get("access-control-request-headers")
    return (("access-control-allow-origin", "*"), ("access-control-allow-methods", CORS_METHODS),
            ("access-control-allow-headers", asked or CORS_HEADERS))


def lowered(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


# -- request → input -------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()


def _json_family(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _binary(media: str) -> bool:
    """Whether OpenWhisk treats a request or response body of this type as bytes (base64)."""
    if media.startswith("text/") or media in _TEXT_APPLICATION or media.endswith(("+json", "+xml")):
        return False
    return True


def _opaque_body(media: str, body: bytes) -> str:
    if _binary(media) or media == "application/json":
        return base64.b64encode(body).decode("ascii")
    return body.decode("utf-8", errors="replace")


def _body_value(media: str, body: bytes, raw: bool) -> tuple[Any, bool]:
    """(the body as OpenWhisk hands it over, whether it was parsed into an object/form)."""
    if not raw and _json_family(media):
        return json.loads(body), True
    if not raw and media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)), True
    return _opaque_body(media, body), False


def activation_input(action: Action, request: WebRequest, activation_id: str) -> dict[str, Any] | WebAnswer:
    """The input object for ``action``, or the 400 answer OpenWhisk gives instead."""
    raw = action.web == WebMode.RAW
    headers = lowered(request.headers)
    media = _media_type(headers.get("content-type"))
    content: dict[str, Any] = {"__ow_method": request.method.lower(), "__ow_headers": headers,
                               "__ow_path": request.path}
    body: Any = None
    if request.body:
        try:
            body, _ = _body_value(media, request.body, raw)
        except ValueError:
            return error_answer(400, MALFORMED, activation_id)
    query = dict(parse_qsl(request.query, keep_blank_values=True))
    if raw:
        content["__ow_query"] = request.query
        content["__ow_body"] = body if body is not None else ""
        return {**action.parameters, **content}
    fields = body if isinstance(body, dict) else {}
    protected = RESERVED | set(action.parameters)
    if protected & (set(query) | set(fields)):
        return error_answer(400, NOT_ALLOWED, activation_id)
    content.update(query)
    if isinstance(body, dict):
        content.update(body)
    elif body is not None:
        content["__ow_body"] = body
    return {**action.parameters, **content}


# -- result → response -----------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _header_values(name: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    if isinstance(value, str):
        return [(name, value)]
    if isinstance(value, int | float):
        return [(name, str(value))]
    if isinstance(value, list):
        return [h for inner in value for h in _header_values(name, inner)]
    raise _Invalid("Response is not valid 'message/http'.")


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Invalid("Response is not valid 'message/http'.")
    try:
        code = int(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise _Invalid("Response is not valid 'message/http'.") from exc
    if not isinstance(code, int) or not 100 <= code <= 599:
        raise _Invalid("Response is not valid 'message/http'.")
    return code


def _as_http(result: Any) -> WebAnswer:
    if not isinstance(result, dict):
        raise _Invalid("Response is not valid 'message/http'.")
    raw_headers = result.get("headers", {})
    if not isinstance(raw_headers, dict):
        raise _Invalid("Response is not valid 'message/http'.")
    headers = [h for name, value in raw_headers.items() for h in _header_values(str(name), value)]
    code = _status(result.get("statusCode"))
    body = result.get("body")
    declared = next((v for k, v in headers if k.lower() == "content-type"), None)
    others = tuple((k, v) for k, v in headers if k.lower() != "content-type")
    if body is None or body == "":
        return WebAnswer(code or 204, others)
    if isinstance(body, str):
        return _string_body(code or 200, others, declared, body)
    media = _media_type(declared or "application/json")
    if not _json_family(media):
        raise _Invalid(CONTENT_TYPE_ERROR)
    text = json.dumps(body, separators=(",", ":")) if media == "application/json" else json.dumps(body, indent=2)
    kind = "application/json" if media == "application/json" else f"{media}; charset=UTF-8"
    return WebAnswer(code or 200, (("content-type", kind), *others), text.encode())


def _string_body(code: int, others: tuple[tuple[str, str], ...], declared: str | None, body: str) -> WebAnswer:
    content_type = declared or "text/html; charset=UTF-8"
    media = _media_type(content_type)
    if declared is not None and not _MEDIA_TYPE.match(media):
        raise _Invalid(UNKNOWN_CONTENT_TYPE)
    decode = _binary(media) or (_json_family(media) and bool(_BASE64.match(body.strip())))
    if decode:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Invalid(CONTENT_TYPE_ERROR) from exc
    else:
        data = body.encode()
    if not _binary(media) and "charset" not in content_type.lower():
        content_type += "; charset=UTF-8"
    return WebAnswer(code, (("content-type", content_type), *others), data)


def _projection(result: Any, extension: str) -> WebAnswer:
    fields = result if isinstance(result, dict) else None
    if extension == ".http":
        return _as_http(result)
    if extension == ".json":
        if isinstance(result, dict | list):
            return WebAnswer(200, (("content-type", "application/json"),), json.dumps(result).encode())
        raise _Invalid("Response is not valid 'application/json'.")
    if extension in (".html", ".svg"):
        key, kind = ("html", "text/html; charset=UTF-8") if extension == ".html" else ("svg", "image/svg+xml")
        value = (fields.get("body", fields.get(key)) if fields is not None else result)
        if isinstance(value, str):
            return WebAnswer(200, (("content-type", kind),), value.encode())
        raise _Invalid(f"Response is not valid '{kind.split(';')[0]}'.")
    value = fields.get("body", fields.get("text")) if fields is not None else result
    if fields is not None and "body" not in fields and "text" not in fields:
        raise _Invalid(PROPERTY_NOT_FOUND)
    text = value if isinstance(value, str) else json.dumps(value, indent=2) if isinstance(value, dict | list) \
        else "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return WebAnswer(200, (("content-type", "text/plain; charset=UTF-8"),), text.encode())


def result_answer(result: Any, extension: str, activation_id: str, application_error: bool = False) -> WebAnswer:
    """The response for a finished activation; ``application_error``: the action returned ``{"error": ...}``,
    whose value is what becomes the response (OpenWhisk's rule)."""
    if application_error:
        result = result.get("error") if isinstance(result, dict) else None
    try:
        answer = _projection(result, extension)
    except _Invalid as invalid:
        status = 404 if invalid.message == PROPERTY_NOT_FOUND else 400
        return error_answer(status, invalid.message, activation_id)
    return WebAnswer(answer.status, (*answer.headers, (ACTIVATION_HEADER, activation_id)), answer.body)
