"""CORS: an ingress rule's ``cors`` policy as the headers the ingress answers with (pure, no I/O).

Role: decide, from a policy and a request's ``Origin`` / ``Access-Control-Request-*`` headers,
which ``Access-Control-*`` headers a response carries, and whether a preflight is answered by
the ingress itself. It must not read sockets, ASGI scopes or settings; the proxy calls it.

DigitalOcean puts Envoy's CORS filter behind each rule (do-app-platform.md §4.9); we follow it:

- an origin is allowed when any matcher matches it — ``exact``, ``prefix`` (deprecated) or
  ``regex`` (full match) — or when a matcher matches the literal ``"*"`` (Envoy's wildcard test);
- the allowed origin is always echoed, never ``*``, so credentials keep working;
- ``max_age`` is a Go duration sent as whole seconds (``"5h30m"`` → ``19800``).

Deliberate differences from Envoy: a refused preflight is answered here without CORS headers
(Envoy may forward it), allowed preflights get ``Vary: Origin`` and ``204``, and a ``*`` in
``allow_methods``/``allow_headers`` is replaced by what the browser asked for when credentials are
allowed (browsers ignore ``*`` on credentialed requests).

Regexes are RE2 at DigitalOcean and Python ``re`` here. ``\\z`` and POSIX classes such as
``[[:alpha:]]`` are translated; RE2-only syntax Python lacks (``\\pN``, ``(?U)``, ``[[:^alpha:]]``) makes that
matcher match nothing; Python-only syntax (backreferences, lookaround) works here though DigitalOcean
would reject it. Python's engine backtracks where RE2 does not, so only short origins are tested.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_MAX_ORIGIN = 2048  # longer Origin headers are never allowed (bounds regex backtracking)

_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")

_POSIX_CLASSES = {"alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
                  "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
                  "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
                  "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f"}
_POSIX_RE = re.compile(r"\[:(" + "|".join(_POSIX_CLASSES) + r"):\]")


def parse_go_duration(text: str) -> int:
    """Whole seconds (truncated) of a Go ``time.ParseDuration`` string such as ``"1h30m"`` or ``"1.5h"``.

    Raises ValueError for anything Go would reject.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = Decimal(0)
    pos = 0
    while pos < len(body):
        part = _DURATION_PART.match(body, pos)
        if part is None or part.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")  # Go also needs a unit after every number
        total += Decimal(part.group(1)) * _UNIT_NS[part.group(2)]
        pos = part.end()
    seconds = int(total // 10**9)
    return -seconds if text.startswith("-") else seconds


def _compile(pattern: str) -> re.Pattern[str] | None:
    """An RE2 pattern as a Python regex, or None when Python cannot express it (matches nothing)."""
    if "[:^" in pattern:
        return None  # negated POSIX classes inside a set have no Python spelling
    translated = _POSIX_RE.sub(lambda found: _POSIX_CLASSES[found.group(1)], pattern)
    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", translated)  # RE2 \z is Python \Z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" FutureWarnings
        try:
            return re.compile(translated)
        except (re.error, RecursionError, OverflowError, ValueError):
            return None


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes, Mapping)):
        return ()
    return tuple(str(item) for item in value if item is not None)


@dataclass(frozen=True)
class CorsPolicy:
    """A compiled CORS policy; build it with :meth:`from_spec` once per route table swap."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    regexes: tuple[re.Pattern[str], ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any]) -> CorsPolicy:
        """The policy of a spec's ``cors`` object; malformed parts are dropped, never raised."""
        exact: set[str] = set()
        prefixes: list[str] = []
        regexes: list[re.Pattern[str]] = []
        origins = raw.get("allow_origins")
        for origin in origins if isinstance(origins, list) else []:
            if not isinstance(origin, Mapping):
                continue
            if isinstance(origin.get("exact"), str):
                exact.add(origin["exact"])
            elif isinstance(origin.get("prefix"), str):
                prefixes.append(origin["prefix"])
            elif isinstance(origin.get("regex"), str) and (compiled := _compile(origin["regex"])) is not None:
                regexes.append(compiled)
        return cls(exact=frozenset(exact), prefixes=tuple(prefixes), regexes=tuple(regexes),
                   allow_methods=_strings(raw.get("allow_methods")),
                   allow_headers=_strings(raw.get("allow_headers")),
                   expose_headers=_strings(raw.get("expose_headers")),
                   max_age=_max_age(raw.get("max_age")),
                   allow_credentials=_truthy(raw.get("allow_credentials")))


def _max_age(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return max(parse_go_duration(value), 0)
    except ValueError:
        return None


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _matches(policy: CorsPolicy, origin: str) -> bool:
    return (origin in policy.exact or any(origin.startswith(p) for p in policy.prefixes)
            or any(r.fullmatch(origin) for r in policy.regexes))


def origin_allowed(policy: CorsPolicy, origin: str) -> bool:
    """Whether ``origin`` may read responses under ``policy`` (a matcher matching ``"*"`` allows all)."""
    if len(origin) > _MAX_ORIGIN:
        return False
    return _matches(policy, "*") or _matches(policy, origin)


def _listed(values: Sequence[str], requested: str | None, credentials: bool) -> str:
    if credentials and "*" in values and requested:
        return requested  # browsers treat "*" literally on credentialed requests
    return ", ".join(values)


def preflight(policy: CorsPolicy, origin: str | None, request_method: str | None,
              request_headers: str | None) -> list[tuple[str, str]] | None:
    """Headers of the ingress's own 204 answer to an OPTIONS request.

    None: not a CORS preflight (no Origin or no Access-Control-Request-Method) — forward it.
    []: a preflight from a refused origin — answer it with no CORS headers.
    """
    if not origin or not request_method:
        return None
    if not origin_allowed(policy, origin):
        return []
    headers = [("Access-Control-Allow-Origin", origin)]
    if policy.allow_methods:
        methods = _listed(policy.allow_methods, request_method, policy.allow_credentials)
        headers.append(("Access-Control-Allow-Methods", methods))
    if policy.allow_headers:
        allowed = _listed(policy.allow_headers, request_headers, policy.allow_credentials)
        headers.append(("Access-Control-Allow-Headers", allowed))
    if policy.max_age is not None:
        headers.append(("Access-Control-Max-Age", str(policy.max_age)))
    if policy.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    headers.append(("Vary", "Origin"))
    return headers


def simple_headers(policy: CorsPolicy, origin: str | None) -> list[tuple[str, str]]:
    """Headers to set on a proxied response to a request from ``origin``; none when it is refused."""
    if not origin or not origin_allowed(policy, origin):
        return []
    headers = [("Access-Control-Allow-Origin", origin)]
    if policy.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ", ".join(policy.expose_headers)))
    if policy.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    headers.append(("Vary", "Origin"))
    return headers


def merge_headers(response: Sequence[tuple[bytes, bytes]],
                  cors: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Raw ASGI response headers with ``cors`` applied: the app's own ``Access-Control-*`` headers
    are replaced (as Envoy does) and ``Origin`` is added to any existing ``Vary``."""
    if not cors:
        return list(response)
    replaced = {name.lower().encode("latin-1") for name, _ in cors if name.lower() != "vary"}
    merged = [(k, v) for k, v in response if k.lower() not in replaced]
    for name, value in cors:
        if name.lower() == "vary":
            merged = _add_vary(merged, value)
        else:
            merged.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return merged


def _add_vary(headers: list[tuple[bytes, bytes]], field: str) -> list[tuple[bytes, bytes]]:
    present = {t.strip().lower() for k, v in headers if k.lower() == b"vary" for t in v.decode("latin-1").split(",")}
    if "*" in present or field.lower() in present:
        return headers
    return headers + [(b"vary", field.encode("latin-1"))]
