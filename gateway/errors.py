"""Errors the gateway raises, and what each means to a caller.

    GatewayError                      500 internal_error
    ├── BadRequest                    400 bad_request
    │   ├── InvalidJSON               400 invalid_json
    │   └── GuardrailBlocked          400 guardrail_blocked: an input or output guardrail said no
    ├── PayloadTooLarge               413 payload_too_large
    ├── Unauthenticated               401 unauthenticated
    ├── PermissionDenied              403 permission_denied
    ├── NotFound                      404 not_found
    │   └── EndpointNotFound          404 endpoint_not_found
    ├── RateLimited                   429 rate_limited (retryable)
    ├── GuardrailJudgeFailed          503 guardrail_judge_failed: a judged guardrail could not decide (fail closed)
    └── UpstreamError                 502 upstream_error
        ├── UpstreamStatus            the upstream's 4xx/5xx (retryable on 429 and 5xx)
        │   └── ContentFiltered       400 content_filter: the provider's content filter refused the prompt
        ├── UpstreamUnavailable       502 upstream_unavailable (retryable): connect failed
        ├── UpstreamTimeout           504 upstream_timeout (retryable)
        │   └── DeadlineExceeded      504 deadline_exceeded: the caller's own deadline passed
        ├── NoEntityAvailable         503 no_entity_available: every entity's circuit is open
        └── UpstreamInvalidResponse   502 upstream_invalid_response: unparseable body

Every class carries ``status`` (HTTP), ``code`` (low-cardinality, used as a metric and
usage-table label), ``retryable`` (may fallback or retry try another entity) and ``kind``
(the family codecs map to each API's error type). Messages never contain credentials.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal[
    "invalid_request", "authentication", "permission", "not_found", "too_large",
    "rate_limit", "overloaded", "timeout", "api_error",
]


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    kind: ClassVar[ErrorKind] = "api_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, param: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    @property
    def http_status(self) -> int:
        return self.status


class BadRequest(GatewayError):
    status, code, kind = 400, "bad_request", "invalid_request"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class GuardrailBlocked(BadRequest):
    code = "guardrail_blocked"


class PayloadTooLarge(GatewayError):
    status, code, kind = 413, "payload_too_large", "too_large"


class Unauthenticated(GatewayError):
    status, code, kind = 401, "unauthenticated", "authentication"


class PermissionDenied(GatewayError):
    status, code, kind = 403, "permission_denied", "permission"


class NotFound(GatewayError):
    status, code, kind = 404, "not_found", "not_found"


class EndpointNotFound(NotFound):
    code = "endpoint_not_found"


class RateLimited(GatewayError):
    status, code, kind, retryable = 429, "rate_limited", "rate_limit", True


class GuardrailJudgeFailed(GatewayError):
    status, code, kind = 503, "guardrail_judge_failed", "overloaded"


class UpstreamError(GatewayError):
    status, code, kind = 502, "upstream_error", "api_error"


class UpstreamStatus(UpstreamError):
    """The provider answered with an error status; the caller sees a status that keeps its meaning."""

    code = "upstream_status"

    def __init__(self, upstream_status: int, message: str, *, retry_after: float | None = None):
        super().__init__(message, retry_after=retry_after)
        self.upstream_status = upstream_status

    @property
    def http_status(self) -> int:
        s = self.upstream_status
        # The provider refusing the gateway's own key is the gateway's fault, not the caller's.
        if s in (401, 403):
            return 502
        return s if 400 <= s < 600 else 502

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.upstream_status == 429 or self.upstream_status >= 500 or self.upstream_status == 408

    @property
    def kind(self) -> ErrorKind:  # type: ignore[override]
        s = self.upstream_status
        if s == 429:
            return "rate_limit"
        if s in (503, 529):
            return "overloaded"
        if s == 404:
            return "not_found"
        if s == 413:
            return "too_large"
        if 400 <= s < 500 and s not in (401, 403, 408):
            return "invalid_request"
        return "api_error"

    @property
    def label(self) -> str:
        return f"upstream_{self.upstream_status}"


class ContentFiltered(UpstreamStatus):
    """The provider's content filter refused the prompt (Azure OpenAI's ``content_filter``
    400): the caller's to change, so final, and its message is the provider's."""

    code = "content_filter"

    def __init__(self, message: str) -> None:
        super().__init__(400, message)

    @property
    def label(self) -> str:
        return self.code


class UpstreamUnavailable(UpstreamError):
    code, retryable = "upstream_unavailable", True


class UpstreamTimeout(UpstreamError):
    status, code, kind, retryable = 504, "upstream_timeout", "timeout", True


class DeadlineExceeded(UpstreamTimeout):
    code, retryable = "deadline_exceeded", False


class NoEntityAvailable(UpstreamError):
    status, code, kind = 503, "no_entity_available", "overloaded"


class UpstreamInvalidResponse(UpstreamError):
    code = "upstream_invalid_response"


def error_label(err: GatewayError) -> str:
    """The low-cardinality label recorded for an error."""
    return err.label if isinstance(err, UpstreamStatus) else err.code
