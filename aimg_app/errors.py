"""Errors the domain raises, each carrying a message that is safe to show to a user.

Services raise these; the API layer renders every one of them as the contract's envelope
with the matching HTTP status. Nothing else ever reaches a client as an error message.
"""
from __future__ import annotations


class ApiError(Exception):
    """An error whose ``message`` may be shown to the caller, answered with ``status``."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, headers=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code if code is not None else self.status
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


class RequestTimeout(ApiError):
    status = 408
