"""HTTP routing: ingress rules, CORS policies and the deprecated per-component routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shoal.spec.models.base import Port, ShortText, SpecModel

RedirectCode = Literal[300, 301, 302, 303, 304, 307, 308]


class StringMatch(SpecModel):
    exact: ShortText | None = None
    prefix: ShortText | None = None
    regex: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class CorsPolicy(SpecModel):
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: str | None = None
    allow_credentials: bool | None = None


class Route(SpecModel):
    path: ShortText | None = None
    # godo and the docs say bool; the ingress model in the OpenAPI says string — lax bool takes both.
    preserve_path_prefix: bool | None = None


class PrefixMatch(SpecModel):
    prefix: ShortText | None = None


class ExactMatch(SpecModel):
    exact: ShortText | None = None


class RuleMatch(SpecModel):
    path: PrefixMatch | None = None
    authority: ExactMatch | None = None


class RuleComponent(SpecModel):
    name: str
    preserve_path_prefix: bool | None = None
    rewrite: ShortText | None = None


class RuleRedirect(SpecModel):
    uri: ShortText | None = None
    authority: ShortText | None = None
    port: Port | None = None
    scheme: Literal["http", "https"] | None = None
    redirect_code: RedirectCode | None = None


class IngressRule(SpecModel):
    match: RuleMatch | None = None
    cors: CorsPolicy | None = None
    component: RuleComponent | None = None
    redirect: RuleRedirect | None = None


class SecureHeader(SpecModel):
    """godo's ``AppIngressSpecSecureHeader``: set ``key: value`` on every answer, or drop ``key``."""

    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=4096)] | None = None
    remove_header: bool | None = None


class Ingress(SpecModel):
    rules: list[IngressRule] | None = None
    custom_error_page_url: str | None = None
    # godo and Terraform send these; the bundled OpenAPI lacks them.
    secure_header: list[SecureHeader] | None = None
    load_balancer: Literal["UNKNOWN", "DIGITALOCEAN"] | None = None
    load_balancer_size: Annotated[int, Field(ge=0, le=1000)] | None = None
