"""load_text: YAML, JSON and deploy templates; clear errors for malformed text."""

from __future__ import annotations

import pytest

from shoal.core.errors import BadRequest
from shoal.spec import load_text


def test_yaml_json_and_template_forms() -> None:
    assert load_text("name: a\n") == {"name": "a"}
    assert load_text('{"name": "a"}') == {"name": "a"}
    assert load_text("spec:\n  name: a\n") == {"name": "a"}
    assert load_text('{"spec": {"name": "a"}}') == {"name": "a"}


def test_a_spec_with_its_own_name_is_not_unwrapped() -> None:
    assert load_text("name: a\nspec: {name: b}\n") == {"name": "a", "spec": {"name": "b"}}


@pytest.mark.parametrize("text", ["name: [a\n", "a: b\n c: d\n", "{\"name\": \"a\"", "\t- x"])
def test_malformed_text_is_a_bad_request_with_a_position(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        load_text(text)
    assert "error parsing app spec" in caught.value.message
    assert "line" in caught.value.message


def test_empty_text_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="empty"):
        load_text("   \n")
