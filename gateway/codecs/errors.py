"""Gateway errors rendered as each API family's error body.

Which family a path belongs to is decided once, by ``dialect_for_path``, so a 401 on an
Anthropic path is an Anthropic error even though it was raised before any codec ran.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import orjson

from gateway.errors import ErrorKind, GatewayError


class ErrorDialect(Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    DATABRICKS = "databricks"


def dialect_for_path(path: str) -> ErrorDialect:
    """The error dialect of a request path (with or without the /ai-gateway prefix)."""
    if path.startswith("/ai-gateway/"):
        path = path[len("/ai-gateway"):]
    if path.startswith("/anthropic/"):
        return ErrorDialect.ANTHROPIC
    if path.startswith("/gemini/"):
        return ErrorDialect.GEMINI
    if path.startswith("/api/2.0/") or (path.startswith("/serving-endpoints/") and path.endswith("/invocations")):
        return ErrorDialect.DATABRICKS
    return ErrorDialect.OPENAI


_OPENAI_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error", "authentication": "authentication_error",
    "permission": "permission_error", "not_found": "not_found_error", "too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error", "overloaded": "server_error", "timeout": "timeout_error",
    "api_error": "server_error",
}
_ANTHROPIC_TYPES: dict[ErrorKind, str] = {
    "invalid_request": "invalid_request_error", "authentication": "authentication_error",
    "permission": "permission_error", "not_found": "not_found_error", "too_large": "request_too_large",
    "rate_limit": "rate_limit_error", "overloaded": "overloaded_error", "timeout": "timeout_error",
    "api_error": "api_error",
}
_GEMINI_STATUS: dict[ErrorKind, str] = {
    "invalid_request": "INVALID_ARGUMENT", "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED", "not_found": "NOT_FOUND", "too_large": "INVALID_ARGUMENT",
    "rate_limit": "RESOURCE_EXHAUSTED", "overloaded": "UNAVAILABLE", "timeout": "DEADLINE_EXCEEDED",
    "api_error": "INTERNAL",
}
_DATABRICKS_CODES: dict[ErrorKind, str] = {
    "invalid_request": "INVALID_PARAMETER_VALUE", "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED", "not_found": "RESOURCE_DOES_NOT_EXIST", "too_large": "BAD_REQUEST",
    "rate_limit": "REQUEST_LIMIT_EXCEEDED", "overloaded": "TEMPORARILY_UNAVAILABLE",
    "timeout": "TEMPORARILY_UNAVAILABLE", "api_error": "INTERNAL_ERROR",
}


def openai_error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"error": {
        "message": err.message, "type": _OPENAI_TYPES[err.kind], "param": err.param, "code": err.code,
    }})


def anthropic_error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": _ANTHROPIC_TYPES[err.kind], "message": err.message}})


def gemini_error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"error": {
        "code": err.http_status, "message": err.message, "status": _GEMINI_STATUS[err.kind],
    }})


def databricks_error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"error_code": _DATABRICKS_CODES[err.kind], "message": err.message, "details": []})


ERROR_BODIES: dict[ErrorDialect, Callable[[GatewayError], bytes]] = {
    ErrorDialect.OPENAI: openai_error_body,
    ErrorDialect.ANTHROPIC: anthropic_error_body,
    ErrorDialect.GEMINI: gemini_error_body,
    ErrorDialect.DATABRICKS: databricks_error_body,
}
