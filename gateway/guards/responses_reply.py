"""An OpenAI Responses reply (a body, or an SSE stream) as the IR, for the output
guardrails of a Responses request passed through to OpenAI: the gateway sends such
requests on as they came and has no Responses provider decoder of its own.

Message text, refusals and function calls are read; reasoning summaries become thinking
(without OpenAI's encrypted content, which stays with OpenAI). Anything else OpenAI
returns (built-in tool calls, annotations) is not text a guardrail reads.
"""

from __future__ import annotations

import msgspec

from gateway.errors import UpstreamError, UpstreamInvalidResponse
from gateway.ir import (
    ChatResult, FinishEvent, Part, StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta,
    ToolCallPart, ToolCallStart, UsageEvent,
)
from gateway.ir.result import FinishReason
from gateway.streaming.responses_sniff import UsageView
from gateway.streaming.sse import SSEEventDecoder


class _Text(msgspec.Struct):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    type: str = ""
    id: str = ""
    content: list[_Text] = []
    summary: list[_Text] = []
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class _Error(msgspec.Struct):
    message: str = ""


class _Response(msgspec.Struct):
    id: str = ""
    model: str = ""
    status: str = ""
    output: list[_Item] = []
    usage: UsageView | None = None
    error: _Error | None = None


class _Event(msgspec.Struct):
    type: str = ""
    delta: str = ""
    item_id: str = ""
    item: _Item | None = None
    response: _Response | None = None
    message: str = ""


_decode_response = msgspec.json.Decoder(_Response)
_decode_event = msgspec.json.Decoder(_Event)


def _finish(status: str, called: bool) -> FinishReason:
    return "tool_calls" if called else "length" if status == "incomplete" else "stop"


def decode_result(body: bytes, provider: str) -> ChatResult:
    """A complete Response body as a ChatResult."""
    try:
        response = _decode_response.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a response that is not a JSON object") from None
    parts: list[Part] = []
    for item in response.output:
        if item.type == "message":
            parts += [TextPart(p.text if p.text is not None else p.refusal or "") for p in item.content]
        elif item.type == "function_call":
            parts.append(ToolCallPart(item.call_id, item.name, item.arguments))
        elif item.type == "reasoning" and item.summary:
            parts.append(ThinkingPart("\n\n".join(s.text or "" for s in item.summary)))
    called = any(isinstance(p, ToolCallPart) for p in parts)
    usage = response.usage.to_ir() if response.usage is not None else None
    return ChatResult(response.id, response.model, parts, _finish(response.status, called), usage)


_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})
_THINKING_DELTAS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})


class ResponsesStreamDecoder(SSEEventDecoder):
    """A Responses event stream as IR events; the final event gives usage and the finish."""

    def __init__(self, provider: str) -> None:
        super().__init__()
        self._provider = provider
        self._calls: dict[str, int] = {}  # function call item id -> tool call index

    def finish(self) -> list[StreamEvent]:
        self._raise_pending()
        return self.feed_events(self._sse.finish())

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        try:
            ev = _decode_event.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise UpstreamInvalidResponse(f"provider '{self._provider}' sent a stream event that is not JSON") from None
        kind = ev.type
        if kind in _TEXT_DELTAS:
            out.append(TextDelta(ev.delta))
        elif kind in _THINKING_DELTAS:
            out.append(ThinkingDelta(ev.delta))
        elif kind == "response.output_item.added" and ev.item is not None and ev.item.type == "function_call":
            index = self._calls[ev.item.id] = len(self._calls)
            out.append(ToolCallStart(index, ev.item.call_id, ev.item.name))
            if ev.item.arguments:
                out.append(ToolCallDelta(index, ev.item.arguments))
        elif kind == "response.function_call_arguments.delta" and ev.item_id in self._calls:
            out.append(ToolCallDelta(self._calls[ev.item_id], ev.delta))
        elif kind in ("response.completed", "response.incomplete") and ev.response is not None:
            if ev.response.usage is not None:
                out.append(UsageEvent(ev.response.usage.to_ir()))
            out.append(FinishEvent(_finish(ev.response.status, bool(self._calls))))
        elif kind in ("response.failed", "error"):
            failed = ev.response.error if ev.response is not None else None
            reason = failed.message if failed is not None else ev.message
            raise UpstreamError(f"provider '{self._provider}' failed the response: {reason}")
