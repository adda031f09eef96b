"""Capturing one request's payloads for the endpoint's inference table, bounded in size.

The request path only keeps references (the body it already read, the chunks it already
wrote) until the response is complete; the text is built once, for the record.
"""

from __future__ import annotations

from gateway.sinks.records import InferenceRecord, UsageRecord


class PayloadCapture:
    """The response bytes of one request, up to ``limit``; the request body is attached at the end."""

    __slots__ = ("limit", "parts", "size", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        """Keep a streamed chunk (as written to the caller) while there is room."""
        room = self.limit - self.size
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[:room]
        if chunk:
            self.parts.append(chunk)
            self.size += len(chunk)

    def record(self, usage: UsageRecord, request_body: bytes, response_body: bytes | None) -> InferenceRecord:
        """The row: ``response_body`` for a whole reply, else the streamed chunks kept."""
        if response_body is not None:
            self.parts, self.size = [], 0
            self.add(response_body)
        request = request_body[: self.limit]
        truncated = self.truncated or len(request) < len(request_body)
        return InferenceRecord(
            request_id=usage.request_id, event_time=usage.event_time, endpoint=usage.endpoint or "",
            api_type=usage.api_type, requester=usage.requester, status_code=usage.status_code,
            latency_ms=usage.latency_ms, streaming=usage.streaming,
            request=request.decode("utf-8", "replace"), response=b"".join(self.parts).decode("utf-8", "replace"),
            truncated=truncated,
        )
