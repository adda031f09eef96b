"""Per-request state: the context every request gets, and the call an LLM request becomes."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gateway.sinks.records import UsageRecord

if TYPE_CHECKING:
    from gateway.config import EndpointConfig
    from gateway.limits import Reservation
    from gateway.server.auth import Principal
    from gateway.sinks.payloads import PayloadCapture


class RequestContext:
    """Made by the first middleware; the usage record fills in as the request goes on."""

    __slots__ = ("request_id", "started", "record", "principal", "first_byte_at", "deadline", "reservation",
                 "request_body", "capture")

    def __init__(self, request_id: str, api_type: str, user_agent: str | None, deadline: float | None = None) -> None:
        self.request_id = request_id
        self.started = time.perf_counter()
        #: time.monotonic() by which the caller wants an answer, if it said so.
        self.deadline = deadline
        self.record = UsageRecord(request_id=request_id, event_time=time.time(), api_type=api_type, user_agent=user_agent)
        self.principal: Principal | None = None
        self.first_byte_at: float | None = None
        #: The rate-limit reservation, settled with the real token count after the response.
        self.reservation: Reservation | None = None
        #: The caller's body as read, and the payload capture when the endpoint has an inference table.
        self.request_body = b""
        self.capture: PayloadCapture | None = None

    def mark_first_byte(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
            self.record.time_to_first_byte_ms = round((self.first_byte_at - self.started) * 1000, 3)


_EMPTY: Mapping[str, str] = MappingProxyType({})


class Call:
    """An LLM request on its way through the pipeline.

    ``body`` is the caller's bytes; ``ir`` is decoded from it only when a provider needs
    translation (``decode`` is the client codec's request decoder, so ``ir`` is a
    ChatRequest for chat APIs and an EmbeddingsInput for embeddings).
    """

    __slots__ = ("ctx", "endpoint", "body", "stream", "include_usage", "session", "headers", "query", "reply_id",
                 "turn", "_decode", "_ir")

    def __init__(self, ctx: RequestContext, endpoint: EndpointConfig, body: bytes, *, stream: bool,
                 include_usage: bool, decode, session: str | None = None,  # type: ignore[no-untyped-def]
                 headers: Mapping[str, str] = _EMPTY, query: Mapping[str, str] = _EMPTY, reply_id: str = "") -> None:
        self.ctx = ctx
        #: The id the gateway gives a reply it encodes itself (a Responses ``resp_...``).
        self.reply_id = reply_id
        #: What a client API decided about this request before routing, for its reply encoder.
        self.turn: Any = None
        #: The caller's request headers and query, for passthroughs that forward some of them.
        self.headers = headers
        self.query = query
        #: The session-affinity key, when the endpoint names a session header and the caller sent it.
        self.session = session
        self.endpoint = endpoint
        self.body = body
        self.stream = stream
        self.include_usage = include_usage
        self._decode = decode
        self._ir: Any = None

    @property
    def ir(self) -> Any:
        if self._ir is None:
            self._ir = self._decode(self.body)
        return self._ir

    def rewrite(self, body: bytes, rewrite_ir: Callable[[Any], Any]) -> None:
        """Go on with ``body`` (an input guardrail masked it), and with every IR of it passed
        through ``rewrite_ir``: some APIs make the IR from what they decoded before, not from ``body``."""
        decode = self._decode
        self.body = body
        self._decode = lambda b: rewrite_ir(decode(b))
        self._ir = None if self._ir is None else rewrite_ir(self._ir)
