from __future__ import annotations

import pytest

from shoal.core.errors import BadRequest
from shoal.core.ids import hash_token, is_token_shaped, new_token
from shoal.domain.accounts import FULL_ACCESS, allows, parse_scopes


def test_scope_rules() -> None:
    assert allows(frozenset({FULL_ACCESS}), "app:delete")
    assert allows(frozenset({"read"}), "app:read") and not allows(frozenset({"read"}), "app:update")
    assert allows(frozenset({"app:update"}), "app:update") and not allows(frozenset({"app:update"}), "app:read")
    assert parse_scopes([]) == frozenset({FULL_ACCESS})
    with pytest.raises(BadRequest, match="unknown scope"):
        parse_scopes(["app:fly"])


def test_tokens_look_like_digitaloceans_and_hash_stably() -> None:
    token = new_token()
    assert is_token_shaped(token) and token.startswith("dop_v1_") and len(token) == 7 + 64
    assert not is_token_shaped("dop_v1_" + "g" * 64)
    assert hash_token(token) == hash_token(token) != token
