"""The one exception tree of shoal.

Every error a user can see carries DigitalOcean's error id and HTTP status, so the API
layer translates any ``ShoalError`` to the wire in one place (``shoal.api.errors``)::

    ShoalError                      server_error        500
    ├── BadRequest                  bad_request         400
    │   └── InvalidArgument         invalid_argument    400   (spec validation: shoal.spec.SpecInvalid)
    ├── Unauthorized                unauthorized        401
    ├── Forbidden                   forbidden           403
    ├── NotFound                    not_found           404
    ├── Conflict                    conflict            409
    ├── PayloadTooLarge             request_too_large   413
    ├── UnprocessableEntity         unprocessable_entity 422
    ├── TooManyRequests             too_many_requests   429
    └── Unavailable                 service_unavailable 503

Adapters re-raise foreign exceptions as one of these with the cause chained.
"""

from __future__ import annotations


class ShoalError(Exception):
    """Base of every error shoal reports; defaults to an unexpected server-side error."""

    error_id: str = "server_error"
    status: int = 500
    default_message: str = "Unexpected server-side error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(ShoalError):
    error_id = "bad_request"
    status = 400
    default_message = "error parsing request body"


class InvalidArgument(BadRequest):
    error_id = "invalid_argument"
    default_message = "invalid argument"


class Unauthorized(ShoalError):
    error_id = "unauthorized"
    status = 401
    default_message = "Unable to authenticate you."


class Forbidden(ShoalError):
    error_id = "forbidden"
    status = 403
    default_message = "You do not have access for the attempted action."


class NotFound(ShoalError):
    error_id = "not_found"
    status = 404
    default_message = "The resource you were accessing could not be found."


class Conflict(ShoalError):
    error_id = "conflict"
    status = 409
    default_message = "The request conflicts with the current state of the resource."


class PayloadTooLarge(ShoalError):
    error_id = "request_too_large"
    status = 413
    default_message = "The request body is too large."


class UnprocessableEntity(ShoalError):
    error_id = "unprocessable_entity"
    status = 422
    default_message = "The request could not be processed."


class TooManyRequests(ShoalError):
    error_id = "too_many_requests"
    status = 429
    default_message = "API rate limit exceeded."

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ShoalError):
    error_id = "service_unavailable"
    status = 503
    default_message = "The service is temporarily unavailable."
