from __future__ import annotations

from typing import Any

import pytest

from shoal.ingress.cors import (CorsPolicy, merge_headers, origin_allowed, parse_go_duration, preflight,
                                simple_headers)


def policy(**spec: Any) -> CorsPolicy:
    return CorsPolicy.from_spec(spec)


def as_dict(headers: list[tuple[str, str]] | None) -> dict[str, str]:
    assert headers is not None
    return dict(headers)


FULL = policy(allow_origins=[{"exact": "https://app.example.com"}], allow_methods=["GET", "POST"],
              allow_headers=["Content-Type", "X-Token"], expose_headers=["X-Request-Id", "ETag"],
              max_age="5h30m", allow_credentials=True)


# origins

def test_exact_origin_matches_only_itself() -> None:
    p = policy(allow_origins=[{"exact": "https://a.example"}])
    assert origin_allowed(p, "https://a.example")
    assert not origin_allowed(p, "https://a.example.evil")
    assert not origin_allowed(p, "https://A.example")  # case-sensitive, as Envoy's exact matcher
    assert not origin_allowed(p, "http://a.example")


def test_prefix_origin() -> None:
    p = policy(allow_origins=[{"prefix": "https://staging-"}])
    assert origin_allowed(p, "https://staging-1.example")
    assert not origin_allowed(p, "https://prod.example")


def test_regex_origin_is_a_full_match() -> None:
    p = policy(allow_origins=[{"regex": r"https://[a-z0-9-]+\.example\.com"}])
    assert origin_allowed(p, "https://pr-12.example.com")
    assert not origin_allowed(p, "https://pr-12.example.com.evil.net")
    assert not origin_allowed(p, "evil https://x.example.com")


def test_re2_syntax_is_translated_and_unsupported_regex_matches_nothing() -> None:
    assert origin_allowed(policy(allow_origins=[{"regex": r"https://[[:alpha:]]+\.dev\z"}]), "https://abc.dev")
    broken = policy(allow_origins=[{"regex": r"https://\pN+"}, {"regex": "("}, {"exact": "https://ok"}])
    assert broken.regexes == ()
    assert origin_allowed(broken, "https://ok")


def test_empty_exact_allows_no_real_origin() -> None:
    p = policy(allow_origins=[{"exact": ""}], allow_methods=["GET"])
    assert not origin_allowed(p, "https://a.example")
    assert preflight(p, "https://a.example", "GET", None) == []
    assert preflight(p, "", "GET", None) is None  # an empty Origin is not a CORS request


def test_wildcard_matcher_allows_any_origin_but_echoes_it() -> None:
    p = policy(allow_origins=[{"exact": "*"}], allow_credentials=True)
    assert origin_allowed(p, "https://anything.example")
    assert as_dict(simple_headers(p, "https://anything.example"))["Access-Control-Allow-Origin"] == \
        "https://anything.example"


def test_any_of_several_matchers() -> None:
    p = policy(allow_origins=[{"exact": "https://a"}, {"prefix": "https://b"}, {"regex": "https://c+"}])
    assert all(origin_allowed(p, o) for o in ("https://a", "https://bee", "https://ccc"))
    assert not origin_allowed(p, "https://d")


def test_malformed_spec_parts_are_dropped() -> None:
    p = CorsPolicy.from_spec({"allow_origins": ["nope", {}, {"exact": "https://a"}], "allow_methods": "GET",
                              "max_age": "soon", "allow_credentials": "true"})
    assert p.exact == frozenset({"https://a"}) and p.allow_methods == () and p.max_age is None
    assert p.allow_credentials
    assert CorsPolicy.from_spec({}) == CorsPolicy()


# preflight

def test_preflight_allowed() -> None:
    headers = preflight(FULL, "https://app.example.com", "POST", "content-type")
    assert headers == [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Methods", "GET, POST"),
        ("Access-Control-Allow-Headers", "Content-Type, X-Token"),
        ("Access-Control-Max-Age", "19800"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]


def test_preflight_refused_origin_gets_no_cors_headers() -> None:
    assert preflight(FULL, "https://evil.example", "POST", None) == []


@pytest.mark.parametrize(("origin", "method"), [(None, "GET"), ("https://app.example.com", None),
                                                ("https://app.example.com", ""), (None, None)])
def test_non_cors_options_is_forwarded(origin: str | None, method: str | None) -> None:
    assert preflight(FULL, origin, method, None) is None


def test_preflight_minimal_policy_sends_only_origin_and_vary() -> None:
    p = policy(allow_origins=[{"prefix": "https://"}])
    assert preflight(p, "https://x", "DELETE", "x-a") == [("Access-Control-Allow-Origin", "https://x"),
                                                           ("Vary", "Origin")]


def test_wildcards_echo_the_request_when_credentials_are_allowed() -> None:
    spec: dict[str, Any] = {"allow_origins": [{"exact": "https://a"}], "allow_methods": ["*"], "allow_headers": ["*"]}
    plain = as_dict(preflight(CorsPolicy.from_spec(spec), "https://a", "PUT", "x-one, x-two"))
    assert plain["Access-Control-Allow-Methods"] == "*" and plain["Access-Control-Allow-Headers"] == "*"
    creds = as_dict(preflight(CorsPolicy.from_spec(spec | {"allow_credentials": True}), "https://a", "PUT",
                              "x-one, x-two"))
    assert creds["Access-Control-Allow-Methods"] == "PUT"
    assert creds["Access-Control-Allow-Headers"] == "x-one, x-two"


def test_credentials_header_only_when_allowed() -> None:
    p = policy(allow_origins=[{"exact": "https://a"}], allow_credentials=False)
    assert "Access-Control-Allow-Credentials" not in as_dict(preflight(p, "https://a", "GET", None))
    assert "Access-Control-Allow-Credentials" not in dict(simple_headers(p, "https://a"))


# max_age

@pytest.mark.parametrize(("text", "seconds"), [
    ("5h30m", 19800), ("1.5h", 5400), ("300ms", 0), ("90s", 90), ("2m3.5s", 123), ("0", 0), ("1h0m0s", 3600),
    ("1500000us", 1), ("1500000µs", 1), ("2000000000ns", 2), (".5m", 30), ("+10s", 10), ("-10s", -10),
])
def test_parse_go_duration(text: str, seconds: int) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1h30", "h", ".s", "1d", "5 m", "1..5s", "-", "abc"])
def test_parse_go_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_max_age_absent_zero_and_fractional() -> None:
    assert policy(max_age="0s").max_age == 0
    assert policy(max_age="1.9s").max_age == 1
    assert policy(max_age="-5s").max_age == 0
    assert policy().max_age is None


# simple (proxied) responses

def test_simple_headers_for_allowed_origin() -> None:
    assert simple_headers(FULL, "https://app.example.com") == [
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Expose-Headers", "X-Request-Id, ETag"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]


def test_simple_headers_none_for_refused_or_missing_origin() -> None:
    assert simple_headers(FULL, "https://evil.example") == []
    assert simple_headers(FULL, None) == []
    assert simple_headers(FULL, "x" * 5000) == []


def test_merge_replaces_app_cors_headers_and_extends_vary() -> None:
    app = [(b"content-type", b"text/plain"), (b"access-control-allow-origin", b"*"), (b"vary", b"Accept-Encoding")]
    merged = merge_headers(app, simple_headers(FULL, "https://app.example.com"))
    assert (b"access-control-allow-origin", b"*") not in merged
    assert (b"access-control-allow-origin", b"https://app.example.com") in merged
    assert [v for k, v in merged if k == b"vary"] == [b"Accept-Encoding", b"Origin"]
    assert merge_headers([(b"Vary", b"origin")], [("Vary", "Origin")]) == [(b"Vary", b"origin")]
    assert merge_headers(app, []) == app
