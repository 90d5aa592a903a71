"""Log forwarding destinations (per component)."""

from __future__ import annotations

from shoal.spec.models.base import SpecModel


class Papertrail(SpecModel):
    endpoint: str


class Datadog(SpecModel):
    endpoint: str | None = None
    api_key: str


class Logtail(SpecModel):
    # The OpenAPI marks ``endpoint`` as required here, which contradicts its own properties;
    # the product docs and godo require ``token``.
    token: str


class OpenSearchBasicAuth(SpecModel):
    user: str | None = None
    password: str | None = None


class OpenSearch(SpecModel):
    endpoint: str | None = None
    basic_auth: OpenSearchBasicAuth | None = None
    index_name: str | None = None
    cluster_name: str | None = None


class LogHeader(SpecModel):
    key: str
    value: str | None = None


class LogDestination(SpecModel):
    name: str
    papertrail: Papertrail | None = None
    datadog: Datadog | None = None
    logtail: Logtail | None = None
    open_search: OpenSearch | None = None
    # godo's generic destination (``AppLogDestinationSpec``): an endpoint URL with extra headers;
    # the wire format it receives is undocumented (runtime reference §4.5).
    endpoint: str | None = None
    headers: list[LogHeader] | None = None
    tls_insecure: bool | None = None


LOG_DESTINATION_KINDS = ("papertrail", "datadog", "logtail", "open_search", "endpoint")
