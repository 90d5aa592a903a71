"""Databases attached to an app: dev databases the platform provisions, or existing clusters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shoal.spec.models.base import Integer, SpecModel, VersionText

DatabaseEngine = Literal["UNSET", "MYSQL", "PG", "REDIS", "MONGODB", "KAFKA", "OPENSEARCH", "VALKEY"]


class Database(SpecModel):
    name: str
    engine: DatabaseEngine | None = None
    version: VersionText | None = None
    production: bool | None = None
    cluster_name: str | None = None
    db_name: str | None = None
    db_user: str | None = None
    # Deprecated sizing fields godo still sends for old specs.
    size: str | None = None
    num_nodes: Annotated[Integer, Field(ge=1, le=64)] | None = None
