"""Environment variables (app-level and per component)."""

from __future__ import annotations

from typing import Literal

from shoal.spec.models.base import SpecModel

EnvScope = Literal["UNSET", "RUN_TIME", "BUILD_TIME", "RUN_AND_BUILD_TIME"]
EnvType = Literal["GENERAL", "SECRET"]


class EnvVar(SpecModel):
    key: str
    value: str | None = None
    scope: EnvScope | None = None
    type: EnvType | None = None
