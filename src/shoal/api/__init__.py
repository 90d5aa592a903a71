"""The HTTP API: DigitalOcean's wire format over Starlette. Thin: parse, call a use case, shape the envelope."""

from shoal.api.app import build_api

__all__ = ["build_api"]
