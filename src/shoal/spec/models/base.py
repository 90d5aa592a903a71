"""Shared building blocks for the app spec models: the base class and constrained scalar types.

Models only check shapes and ranges; anything that needs a look at other fields or the catalogue
lives in ``shoal.spec.rules`` so that every problem can be reported together.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are refused, the way doctl refuses them."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        hide_input_in_errors=True,
        # ``validate`` etc. are not used as field names, but users may send odd keys such as
        # ``model_config``; pydantic must report them as unknown rather than choke.
        protected_namespaces=(),
    )


def number_as_text(value: Any) -> Any:
    # YAML reads an unquoted ``minimum_tls_version: 1.2`` as a float; the wire type is a string.
    if isinstance(value, float) and not isinstance(value, bool):
        return repr(value)
    return value


def not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; JSON's booleans are not numbers, and DigitalOcean
    # refuses ``instance_count: true``.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "expected an integer")
    return value


Integer = Annotated[int, BeforeValidator(not_a_boolean)]
Port = Annotated[Integer, Field(ge=1, le=65535)]
InstanceCount = Annotated[Integer, Field(ge=1, le=250)]
Text = Annotated[str, Field(max_length=4096)]
ShortText = Annotated[str, Field(max_length=256)]
VersionText = Annotated[str, BeforeValidator(number_as_text)]
