"""The usage record: one row per request, success or failure."""

from __future__ import annotations

import msgspec


class AttemptRecord(msgspec.Struct, frozen=True):
    """One try of one served entity: ``entity`` is provider/model; status 0 means skipped
    (its circuit was open)."""

    entity: str
    status: int
    latency_ms: float
    error_code: str | None = None


class UsageRecord(msgspec.Struct, kw_only=True):
    """What the usage table stores about one request. Times are Unix seconds / milliseconds."""

    request_id: str
    event_time: float
    api_type: str
    endpoint: str | None = None
    provider: str | None = None
    provider_model: str | None = None
    requester: str | None = None
    user_agent: str | None = None
    status_code: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    tokens_estimated: bool = False
    latency_ms: float = 0.0
    time_to_first_byte_ms: float | None = None
    streaming: bool = False
    request_tags: dict[str, str] = {}
    error_code: str | None = None
    attempts: list[AttemptRecord] = []
    #: What guardrails did beyond letting the request pass: ``stage.check:verdict`` entries,
    #: comma-separated (``input.pii:mask,output.invalid_keywords:block``); never the matched text.
    guardrails: str | None = None


#: Column order shared by every sink.
COLUMNS: tuple[str, ...] = tuple(UsageRecord.__struct_fields__)


class InferenceRecord(msgspec.Struct, kw_only=True):
    """One request's payloads, for endpoints with an inference table. ``request`` and
    ``response`` are the bodies as sent (a stream as its SSE text), cut at the endpoint's
    ``max_payload_bytes`` when ``truncated``."""

    request_id: str
    event_time: float
    endpoint: str
    api_type: str
    requester: str | None = None
    status_code: int = 0
    latency_ms: float = 0.0
    streaming: bool = False
    request: str = ""
    response: str = ""
    truncated: bool = False


INFERENCE_COLUMNS: tuple[str, ...] = tuple(InferenceRecord.__struct_fields__)
