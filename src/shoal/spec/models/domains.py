"""Custom domains of an app."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator

from shoal.spec.models.base import SpecModel, number_as_text

DomainType = Literal["UNSPECIFIED", "DEFAULT", "PRIMARY", "ALIAS"]


class Domain(SpecModel):
    domain: str
    type: DomainType | None = None
    wildcard: bool | None = None
    zone: str | None = None
    # A string on the wire ("1.2"/"1.3"); a bare YAML number is read as the same string.
    minimum_tls_version: Annotated[Literal["1.2", "1.3"], BeforeValidator(number_as_text)] | None = None
    certificate: str | None = None
