"""Pydantic models of the DigitalOcean AppSpec, one module per noun.

They check types, enums and ranges and refuse unknown fields. Cross-field rules live in
``shoal.spec.rules``; defaults are filled by ``shoal.spec.normalize``.
"""

from shoal.spec.models.app import AppSpec
from shoal.spec.models.components import Function, Job, Service, StaticSite, Worker
from shoal.spec.models.databases import Database
from shoal.spec.models.domains import Domain

__all__ = ["AppSpec", "Database", "Domain", "Function", "Job", "Service", "StaticSite", "Worker"]
