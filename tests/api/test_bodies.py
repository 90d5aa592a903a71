from __future__ import annotations

import pytest

from shoal.api.bodies import decode
from shoal.core.errors import BadRequest


def test_json_and_yaml() -> None:
    assert decode(b'{"a": 1}', "application/json") == {"a": 1}
    assert decode(b"a: 1\nb: [x]\n", "application/yaml; charset=utf-8") == {"a": 1, "b": ["x"]}
    assert decode(b'{"a": 1}', "") == {"a": 1}


@pytest.mark.parametrize(("raw", "kind", "words"), [
    (b"{", "application/json", "line 1, column 2"),
    (b"a: [", "text/yaml", "invalid YAML at line"),
    (b"   ", "application/json", "empty"),
    (b"\xc3\x28", "application/json", "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested"),
])
def test_failures_say_where(raw: bytes, kind: str, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        decode(raw, kind)
