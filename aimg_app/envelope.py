"""The contract's response envelope, and the one handler that renders every error in it."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .errors import ApiError

log = logging.getLogger("aimg.errors")

# Messages for HTTP errors raised by Flask/werkzeug themselves (routing, body size...).
_HTTP_MESSAGES = {
    400: "The request is invalid.",
    401: "You are not signed in.",
    403: "You are not allowed to access the requested resource.",
    404: "The requested resource does not exist.",
    405: "This method is not allowed on this resource.",
    406: "Only JSON responses are available.",
    408: "The request timed out.",
    409: "The resource already exists.",
    410: "The resource was removed.",
    413: "The request body is too large.",
    415: "The request body has an unsupported content type.",
    429: "Too many requests: slow down.",
    500: "Internal server error: please try again later.",
    503: "The service is temporarily unavailable: please try again later.",
}


def ok(payload: Any = None, metadata: dict | None = None) -> dict:
    """A success body; views return it and the envelope schema serialises it."""
    body: dict[str, Any] = {"hasError": False, "payload": payload}
    if metadata is not None:
        body["metadata"] = metadata
    return body


def error_body(status: int, message: str, code: int | None = None) -> dict:
    return {"hasError": True, "errorMessage": message, "errorCode": code if code is not None else status, "payload": None}


def error_response(status: int, message: str, code: int | None = None, headers: dict | None = None):
    response = jsonify(error_body(status, message, code))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _flatten_validation(messages: Any, prefix: str = "") -> list[str]:
    """webargs/marshmallow nest messages by location and field; name each field in plain words."""
    out: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in {"json", "query", "form", "files", "headers", "view_args", "json_or_form", "querystring"} and not prefix:
                out.extend(_flatten_validation(value, ""))
            elif key == "_schema":
                out.extend(_flatten_validation(value, prefix))
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
                out.extend(_flatten_validation(value, name))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            text = " ".join(messages)
            out.append(f"{prefix}: {text}" if prefix else text)
        else:
            for item in messages:
                out.extend(_flatten_validation(item, prefix))
    else:
        out.append(f"{prefix}: {messages}" if prefix else str(messages))
    return out


def render_http_exception(error: HTTPException):
    """Flask-smorest's handler, replaced: every HTTP error becomes the envelope."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 422:  # webargs' validation status; the contract says 400
        status = 400
    if data.get("messages") or data.get("errors"):
        details = _flatten_validation(data.get("messages") or data.get("errors"))
        message = "Invalid input: " + "; ".join(details) if details else _HTTP_MESSAGES[400]
    elif data.get("message"):
        message = str(data["message"])
    elif status == 400 and error.description and "Failed to decode JSON" in str(error.description):
        message = "The request body is not valid JSON."
    elif status == 405:
        message = _HTTP_MESSAGES[405]
    elif status >= 500:
        message = _HTTP_MESSAGES.get(status, _HTTP_MESSAGES[500])
    else:
        message = _HTTP_MESSAGES.get(status) or (error.description or "Request failed.")
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return error_response(status, message, headers=headers)


# Infrastructure faults that mean "try again later" rather than "we have a bug".
def _unavailable_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    try:
        import pymongo.errors

        types += [pymongo.errors.ConnectionFailure, pymongo.errors.ServerSelectionTimeoutError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import psycopg
        import psycopg_pool

        types += [psycopg.OperationalError, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover
        pass
    try:
        import redis.exceptions

        types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    try:
        import requests

        types += [requests.ConnectionError, requests.Timeout]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def register_error_handlers(app: Flask) -> None:
    unavailable = _unavailable_types()

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.message, error.code, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return render_http_exception(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return render_http_exception(error)
        if unavailable and isinstance(error, unavailable):
            log.error("service unavailable: %s: %s", type(error).__name__, error)
            return error_response(503, _HTTP_MESSAGES[503])
        log.exception("unexpected error")
        return error_response(500, _HTTP_MESSAGES[500])
